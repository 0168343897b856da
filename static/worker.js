/* HYPE worker pages: consent, instructions, browser check and the frame-locked trial runner.
 *
 * The server decides everything (stage, trial order, exposure); this script only shows what it is
 * told and reports what it measured. Presentation is counted in display frames with
 * requestAnimationFrame: a stimulus drawn in the callback at time T_k is on screen from the next
 * frame until the callback that replaces it, so its measured duration is T_{k+n} - T_k.
 */
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;

  // -- small helpers ------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));

  class ApiError extends Error {
    constructor(status, payload) {
      super((payload && payload.message) || `HTTP ${status}`);
      this.status = status;
      this.payload = payload || {};
    }
  }

  async function api(method, url, data) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (data !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(data);
    }
    const response = await fetch(url, options);
    let payload = null;
    try { payload = await response.json(); } catch (e) { payload = null; }
    if (!response.ok) throw new ApiError(response.status, payload);
    return payload;
  }

  /* Retries network failures and 5xx with the same body (and so the same idempotency key): the
   * server records an answer once however often it arrives. 4xx are final. */
  async function apiWithRetry(method, url, data, attempts = 8, onRetry = null) {
    let delay = 250;
    for (let k = 1; ; k++) {
      try {
        return await api(method, url, data);
      } catch (err) {
        const retryable = !(err instanceof ApiError) || err.status >= 500 || err.status === 429;
        if (!retryable || k >= attempts) throw err;
        if (onRetry) onRetry(k, err);
        await sleep(delay);
        delay = Math.min(delay * 2, 4000);
      }
    }
  }

  function showError(el, err) {
    el.textContent = err.message || String(err);
    el.hidden = false;
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /* Median frame interval over n animation frames: the display's refresh interval. */
  async function measureRefresh(n = 60) {
    let last = await nextFrame();
    const deltas = [];
    for (let k = 0; k < n; k++) {
      const t = await nextFrame();
      deltas.push(t - last);
      last = t;
    }
    deltas.sort((a, b) => a - b);
    return deltas[Math.floor(deltas.length / 2)];
  }

  // -- start (consent) ------------------------------------------------------------------------------

  function initStart() {
    const button = $("consent");
    if (!button) return;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const params = JSON.parse(body.dataset.params || "{}");
        const state = await apiWithRetry("POST", body.dataset.entryUrl, { consent: true, params }, 3);
        location.assign(state.url);
      } catch (err) {
        showError($("entry-error"), err);
        button.disabled = false;
      }
    });
  }

  // -- instructions ---------------------------------------------------------------------------------

  function initInstructions() {
    $("continue").addEventListener("click", async (event) => {
      const button = event.target;
      button.disabled = true;
      try {
        const state = await apiWithRetry("POST", body.dataset.api + "/instructions", {});
        location.assign(state.url);
      } catch (err) {
        showError($("instructions-error"), err);
        button.disabled = false;
      }
    });
  }

  // -- browser check --------------------------------------------------------------------------------

  function initCheck() {
    const run = async () => {
      $("check-error").hidden = true;
      $("check-retry").hidden = true;
      $("check-status").textContent = "Measuring…";
      const refresh = await measureRefresh(90);
      try {
        const state = await api("POST", body.dataset.api + "/check", {
          refresh_interval_ms: refresh,
          window_width: window.innerWidth,
          window_height: window.innerHeight,
        });
        location.assign(state.url);
      } catch (err) {
        $("check-status").textContent = `Display: ${(1000 / refresh).toFixed(0)} Hz, window ${window.innerWidth}×${window.innerHeight}.`;
        showError($("check-error"), err);
        $("check-retry").hidden = false;
      }
    };
    $("check-retry").addEventListener("click", run);
    run();
  }

  // -- trials ---------------------------------------------------------------------------------------

  /* Network failures and 5xx are retried like API calls (a restarted server or database answers
   * once with an error), until the image arrives; a 4xx is final. `onRetry` hears of each retry. */
  async function loadBitmap(url, onRetry = null) {
    let delay = 250;
    for (let k = 1; ; k++) {
      let response = null;
      try { response = await fetch(url, { credentials: "same-origin" }); } catch (e) { response = null; }
      if (response && response.ok) return createImageBitmap(await response.blob());
      if (response && response.status < 500) throw new Error(`could not load an image (HTTP ${response.status})`);
      if (onRetry) onRetry(url);
      await sleep(delay);
      delay = Math.min(delay * 2, 4000);
    }
  }

  function initTrials() {
    const apiBase = body.dataset.api;
    const stage = $("stage");
    const canvas = $("screen");
    const ctx = canvas.getContext("2d", { alpha: false });
    const overlay = $("overlay");
    const fakeButton = $("answer-fake");
    const realButton = $("answer-real");
    const width = Number(stage.dataset.width);
    const height = Number(stage.dataset.height);
    stage.style.width = `${width}px`;
    stage.style.height = `${height}px`;
    let frameMs = Number(body.dataset.refresh) || 1000 / 60;
    const preloaded = new Map(); // url -> Promise<ImageBitmap>

    // Focus and visibility losses during a trial make it untrustworthy (docs/protocol.md): record them.
    let focusLost = false;
    window.addEventListener("blur", () => { focusLost = true; });
    document.addEventListener("visibilitychange", () => { if (document.hidden) focusLost = true; });

    /* Images being retried (the network dropped while fetching them). A preload runs during other
     * trials, so its retries only mark the image; the status line says "reconnecting" when the runner
     * waits for such an image, between presentations. */
    const retryingImages = new Set();
    let waitingForImages = false;
    const onImageRetry = (url) => {
      retryingImages.add(url);
      if (waitingForImages) setNetStatus(RECONNECTING_IMAGES, "reconnecting");
    };
    const bitmap = (url) => {
      if (!preloaded.has(url)) {
        const loading = loadBitmap(url, onImageRetry);
        loading.then(() => retryingImages.delete(url), () => retryingImages.delete(url));
        preloaded.set(url, loading);
      }
      return preloaded.get(url);
    };

    const clear = () => { ctx.fillStyle = "#808080"; ctx.fillRect(0, 0, width, height); };
    const setOverlay = (text, cls = "") => { overlay.textContent = text; overlay.className = `overlay ${cls}`; };

    /* What the network is doing, in words, so a worker never wonders whether an answer counted:
     * "Saving…" when the server is slow, "Reconnecting…" while an answer is retried, "Saved" after.
     * The line changes only between presentations (never by a timer), so it cannot cost a frame of
     * an exposure: "saved" stays until the next answer is sent. */
    const netStatus = $("net-status");
    function setNetStatus(text, cls = "") {
      if (netStatus.textContent === text && netStatus.hidden === !text) return;
      netStatus.textContent = text;
      netStatus.className = `net-status ${cls}`;
      netStatus.hidden = !text;
    }
    function clearNetStatus(savedText) {
      if (!netStatus.hidden) setNetStatus(savedText, "saved");
    }
    const RECONNECTING = "Connection problem: reconnecting… Your answer is kept and will be sent. Please keep this page open.";
    const onRetry = () => setNetStatus(RECONNECTING, "reconnecting");
    const RECONNECTING_IMAGES = "Connection problem: reconnecting… The next image will show once it has loaded. Please keep this page open.";

    /* The trial's image and masks, before anything is drawn: "Loading the next image…" when slow,
     * "reconnecting…" while one is retried, "Reconnected." after. */
    async function trialImages(trial) {
      const urls = [trial.image_url, ...trial.masks];
      waitingForImages = true;
      if (urls.some((u) => retryingImages.has(u))) setNetStatus(RECONNECTING_IMAGES, "reconnecting");
      const slow = setTimeout(() => { if (netStatus.hidden || netStatus.classList.contains("saved")) setNetStatus("Loading the next image…", "saving"); }, 400);
      try {
        const [image, ...masks] = await Promise.all(urls.map(bitmap));
        if (netStatus.classList.contains("reconnecting")) setNetStatus("Reconnected.", "saved");
        else if (netStatus.classList.contains("saving") && netStatus.textContent.startsWith("Loading")) setNetStatus("");
        return { image, masks };
      } finally {
        clearTimeout(slow);
        waitingForImages = false;
      }
    }

    /* An answer is retried until it is stored (the idempotency key makes that safe); a 4xx is final. */
    async function saveAnswer(body) {
      setNetStatus("");
      const slow = setTimeout(() => setNetStatus("Saving your answer…", "saving"), 400);
      try {
        const result = await apiWithRetry("POST", apiBase + "/answers", body, Infinity, onRetry);
        clearNetStatus(netStatus.classList.contains("reconnecting") ? "Reconnected: your answer is saved." : "Saved.");
        return result;
      } finally {
        clearTimeout(slow);
      }
    }

    async function fetchTrial() {
      const state = await apiWithRetry("GET", apiBase + "/trial", undefined, Infinity, onRetry);
      clearNetStatus("Reconnected.");
      return state;
    }

    /* Between HYPE-time blocks: a break as long as the worker likes. The staircases live on the
     * server, so nothing is lost; the break's length goes with the next answer (break_ms) so that
     * session times leave it out, and no trial is running, so it is never timed or flagged. With
     * interleaved blocks (every staircase runs throughout) the break comes after the same number of
     * trials: each "part" is one block's worth of trials. */
    const pauseBox = $("pause");
    function pauseScreen(blocksDone) {
      return new Promise((resolve) => {
        const began = performance.now();
        stage.hidden = true;
        $("answer-row").hidden = true;
        $("pause-text").textContent = `Part ${blocksDone} of ${body.dataset.blocks} is done.`;
        pauseBox.hidden = false;
        const button = $("pause-continue");
        button.focus();
        const go = () => {
          document.removeEventListener("keydown", onKey);
          button.removeEventListener("click", go);
          pauseBox.hidden = true;
          stage.hidden = false;
          $("answer-row").hidden = false;
          resolve(performance.now() - began);
        };
        const onKey = (e) => { if (e.key === " ") { e.preventDefault(); go(); } };
        // A key still held from the last answer must not end the break at once.
        setTimeout(() => document.addEventListener("keydown", onKey), 300);
        button.addEventListener("click", go);
      });
    }

    function setProgress(p) {
      if (!p || !p.total) return;
      $("progress-bar").style.width = `${(100 * p.done) / p.total}%`;
      $("progress-text").textContent = `${p.done} / ${p.total}`;
    }

    /* Runs segments frame by frame. Each segment draws once and stays for `frames` frames; the
     * rAF timestamp at which each segment was drawn is its onset. Returns the onsets and the
     * frame intervals seen (to keep the refresh estimate current). */
    function runSegments(segments) {
      return new Promise((resolve) => {
        const onsets = [];
        const deltas = [];
        let index = -1;
        let remaining = 0;
        let last = null;
        const tick = (now) => {
          if (last !== null) deltas.push(now - last);
          last = now;
          if (remaining <= 0) {
            index += 1;
            onsets.push(now);
            if (index >= segments.length) { resolve({ onsets, deltas }); return; }
            segments[index].draw();
            remaining = segments[index].frames;
          }
          remaining -= 1;
          requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      });
    }

    function updateFrameEstimate(deltas) {
      if (deltas.length < 10) return;
      const sorted = deltas.slice().sort((a, b) => a - b);
      frameMs = sorted[Math.floor(sorted.length / 2)];
    }

    /* Waits for F / J or a button; resolves with {judgedFake, at} (performance.now() time base). */
    function waitForAnswer() {
      return new Promise((resolve) => {
        fakeButton.disabled = false;
        realButton.disabled = false;
        const done = (judgedFake, at) => {
          document.removeEventListener("keydown", onKey);
          fakeButton.removeEventListener("click", onFake);
          realButton.removeEventListener("click", onReal);
          fakeButton.disabled = true;
          realButton.disabled = true;
          resolve({ judgedFake, at });
        };
        const onKey = (e) => {
          if (e.repeat) return;
          const key = e.key.toLowerCase();
          if (key === "f") done(true, e.timeStamp);
          else if (key === "j") done(false, e.timeStamp);
        };
        const onFake = (e) => done(true, e.timeStamp);
        const onReal = (e) => done(false, e.timeStamp);
        document.addEventListener("keydown", onKey);
        fakeButton.addEventListener("click", onFake);
        realButton.addEventListener("click", onReal);
      });
    }

    async function presentUntimed(trial, image) {
      focusLost = !document.hasFocus();
      const { onsets } = await runSegments([{ draw: () => { setOverlay(""); ctx.drawImage(image, 0, 0, width, height); }, frames: 1 }]);
      const onset = onsets[0];
      const answer = await waitForAnswer();
      const off = performance.now();
      clear();
      return {
        judgedFake: answer.judgedFake,
        measured_ms: off - onset,
        mask_measured_ms: [],
        reaction_ms: answer.at - onset,
        client_timestamps: { image_on: onset, answer: answer.at, image_off: off },
      };
    }

    async function presentTimed(trial, image, masks) {
      const countdown = trial.countdown || { steps: 0, ms: 0 };
      const segments = [];
      for (let k = countdown.steps; k >= 1; k--) {
        segments.push({ draw: () => { clear(); setOverlay(String(k)); }, frames: Math.max(1, Math.round(countdown.ms / frameMs)) });
      }
      const imageFrames = Math.max(1, Math.round(trial.exposure_ms / frameMs));
      segments.push({ draw: () => { setOverlay(""); ctx.drawImage(image, 0, 0, width, height); }, frames: imageFrames });
      const maskFrames = Math.max(1, Math.round(trial.mask_ms / frameMs));
      for (const mask of masks) segments.push({ draw: () => ctx.drawImage(mask, 0, 0, width, height), frames: maskFrames });
      segments.push({ draw: () => { clear(); setOverlay("Real or fake?", "prompt"); }, frames: 1 });

      focusLost = !document.hasFocus();
      const { onsets, deltas } = await runSegments(segments);
      const first = countdown.steps; // index of the image segment
      const imageOn = onsets[first];
      const measured = onsets[first + 1] - imageOn;
      const maskMeasured = masks.map((_, k) => onsets[first + 2 + k] - onsets[first + 1 + k]);
      const answer = await waitForAnswer();
      const refresh = frameMs;
      updateFrameEstimate(deltas);
      return {
        judgedFake: answer.judgedFake,
        measured_ms: measured,
        mask_measured_ms: maskMeasured,
        reaction_ms: answer.at - imageOn,
        refresh_used_ms: refresh,
        client_timestamps: {
          countdown_on: onsets[0], image_on: imageOn, mask_on: onsets[first + 1], prompt_on: onsets[onsets.length - 2], answer: answer.at,
          image_frames: imageFrames, mask_frames: maskFrames,
        },
      };
    }

    async function runTrial(state, breakMs) {
      const trial = state.trial;
      const { image, masks } = await trialImages(trial);
      const shown = trial.timed ? await presentTimed(trial, image, masks) : await presentUntimed(trial, image);
      // Preload the next image only after this presentation: decoding during an exposure could drop a frame.
      for (const url of state.preload) bitmap(url).catch(() => preloaded.delete(url));
      preloaded.delete(trial.image_url);
      if (breakMs !== null) shown.client_timestamps.break_ms = breakMs;
      const result = await saveAnswer({
        trial: trial.id,
        response: shown.judgedFake ? "fake" : "real",
        idempotency_key: newKey(),
        measured_ms: shown.measured_ms,
        mask_measured_ms: shown.mask_measured_ms,
        refresh_interval_ms: shown.refresh_used_ms || frameMs,
        reaction_ms: shown.reaction_ms,
        focus_lost: focusLost,
        client_timestamps: shown.client_timestamps,
      });
      setProgress(result.progress);
      if (result.feedback) {
        setOverlay(result.feedback.correct ? "Correct" : "Incorrect", result.feedback.correct ? "good" : "bad");
        await sleep(700);
        setOverlay("");
      }
      return result;
    }

    async function loop() {
      const phase = body.dataset.phase;
      // The first trial comes from GET /trial; each answer's reply carries the next one.
      let state = await fetchTrial();
      const pauses = body.dataset.pauseBetweenBlocks === "1";
      const perPart = Number(body.dataset.trialsPerBlock);
      let shown = 0; // trials shown since this page loaded: no break before the first (the intro was one)
      for (;;) {
        setProgress(state.progress);
        if (!state.trial || state.stage !== phase) { location.assign(state.url); return; }
        let breakMs = null;
        const done = state.progress ? state.progress.done : 0;
        if (pauses && shown > 0 && perPart > 0 && done > 0 && done % perPart === 0) breakMs = await pauseScreen(done / perPart);
        shown += 1;
        const result = await runTrial(state, breakMs);
        if (result.stage !== phase) { location.assign(result.url); return; }
        state = result.next || await fetchTrial();
      }
    }

    const start = async () => {
      if (!$("intro").hidden) {
        $("intro").hidden = true;
        stage.hidden = false;
        $("answer-row").hidden = false;
        document.removeEventListener("keydown", onSpace);
        clear();
        try { await loop(); } catch (err) { showError($("trial-error"), err); }
      }
    };
    const onSpace = (e) => { if (e.key === " ") { e.preventDefault(); start(); } };
    document.addEventListener("keydown", onSpace);
    $("start").addEventListener("click", start);
    api("GET", apiBase).then((state) => setProgress(state.progress)).catch(() => {});
  }

  // -- done -----------------------------------------------------------------------------------------

  function initDone() {
    const target = body.dataset.redirect;
    if (target) setTimeout(() => location.assign(target), 1500);
  }

  const pages = { start: initStart, instructions: initInstructions, check: initCheck, trials: initTrials, done: initDone };
  if (pages[page]) pages[page]();
})();

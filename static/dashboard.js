/* Study dashboard: refreshes the progress table, the live score and the Certainty card every 10 s from live.json. */
"use strict";

(function () {
  const body = document.body;
  if (body.dataset.page !== "study") return;
  const url = body.dataset.live;
  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
  const fmt = (x, infinity) => (x === null || x === undefined ? "—" : infinity ? `${(100 * x).toFixed(1)}%` : x.toFixed(1));

  function renderProgress(rows, complete) {
    const tbody = document.querySelector("#progress tbody");
    tbody.replaceChildren(...rows.map((p) => {
      const tr = document.createElement("tr");
      if (p.full) tr.className = "complete";
      [p.model, `${p.valid} / ${p.target}`, p.in_progress, p.excluded, p.abandoned, p.failed, p.judgments, p.flagged,
        p.full ? "complete" : `${p.missing} to go`]
        .forEach((v) => tr.appendChild(cell(String(v))));
      return tr;
    }));
    document.getElementById("study-complete").hidden = !complete;
  }

  function renderScore(score) {
    const box = document.getElementById("live-score");
    if (!score.available) { const p = document.createElement("p"); p.className = "muted"; p.textContent = score.message; box.replaceChildren(p); return; }
    const infinity = score.settings.mode === "hype-infinity";
    const table = document.createElement("table");
    const head = document.createElement("tr");
    ["Model", infinity ? "HYPE-∞ error" : "HYPE-time (ms)", "95% CI", "Evaluators"].forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
    table.createTHead().appendChild(head);
    const tbody = table.createTBody();
    for (const row of score.leaderboard.rows) {
      const tr = document.createElement("tr");
      tr.appendChild(cell(row.model));
      tr.appendChild(cell(fmt(row.estimate, infinity)));
      if (row.ci_low === null || row.ci_low === undefined) {
        const td = cell(row.ci_note || "—"); td.className = "muted"; tr.appendChild(td);
      } else {
        const td = cell(`${fmt(row.ci_low, infinity)} – ${fmt(row.ci_high, infinity)}`); td.className = "ci";
        if (row.interval_method) {  // a stopped model: the stopping rule's interval, named
          const note = document.createElement("div"); note.className = "muted small interval-method";
          note.textContent = row.interval_method; td.appendChild(note);
        }
        tr.appendChild(td);
      }
      tr.appendChild(cell(String(row.n_evaluators)));
      tbody.appendChild(tr);
    }
    const rule = document.createElement("p");
    rule.className = "muted small"; rule.id = "ci-rule";
    rule.textContent = `A confidence interval is shown from ${score.min_evaluators_for_ci} evaluators of a model on: ` +
      "with fewer, resampling them gives an interval far narrower than the truth (with one, no width at all).";
    box.replaceChildren(table, rule);
  }

  function renderCertainty(html) {
    // The server renders the card from the same template as the page (escaped by Jinja), so it is swapped whole.
    const card = document.getElementById("certainty-card");
    if (!card || typeof html !== "string" || !html.trim()) return;
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const fresh = holder.querySelector("#certainty-card");
    if (fresh) card.replaceWith(fresh);
  }

  async function refresh() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      renderProgress(data.progress, data.complete);
      renderScore(data.score);
      renderCertainty(data.certainty_html);
      document.getElementById("live-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) { /* keep the last figures; try again next tick */ }
  }
  setInterval(refresh, 10000);
})();

/* Background jobs: while one is waiting or running, its row refreshes every second from jobs.json;
   when it ends the page reloads once, so new metrics and the report link appear. */
(function () {
  const section = document.getElementById("jobs");
  if (!section) return;
  const url = section.dataset.jobs;
  const active = (state) => state === "queued" || state === "running";
  let watching = Array.from(section.querySelectorAll("tr[data-job]")).some((tr) => active(tr.dataset.state));

  function render(job) {
    const tr = section.querySelector(`tr[data-job="${job.id}"]`);
    if (!tr) return false;
    tr.dataset.state = job.state;
    tr.className = `job-${job.state}`;
    tr.querySelector(".job-state").textContent = job.state;
    tr.querySelector("progress").value = job.percent;
    tr.querySelector(".job-percent").textContent = `${job.percent}%`;
    const detail = tr.querySelector(".job-detail");
    if (job.error) {
      const span = document.createElement("span"); span.className = "job-error"; span.textContent = job.error;
      detail.replaceChildren(span);
    } else {
      detail.textContent = job.message;
    }
    return true;
  }

  async function poll() {
    if (!watching) return;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const data = await response.json();
        const known = data.jobs.every(render);
        const still = data.jobs.some((j) => active(j.state));
        if (!still || !known) { watching = false; window.location.reload(); return; }
      }
    } catch (e) { /* try again next tick */ }
    setTimeout(poll, 1000);
  }
  if (watching) setTimeout(poll, 1000);
})();

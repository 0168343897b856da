"""What the browser tests and tests/browser/make_screenshots.py share: the app served on 127.0.0.1 in a
thread, Debian's Chromium driven by sync Playwright, a network guard that keeps every request on the
machine, and a `Worker` that walks a session the way a crowd worker does (keys or clicks).

No network: Playwright never downloads a browser here (we launch /usr/bin/chromium), and every
request to anything but 127.0.0.1 is answered or refused by the guard, never sent. The two places
the app legitimately sends a worker away (Prolific's completion URL, MTurk's externalSubmit form)
are answered with a stub page and recorded, so tests can assert on exactly what would have left.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
LOCAL_HOST = "127.0.0.1"
# Where the app sends workers when they finish; answered by the guard, never reached.
EXTERNAL_ENDPOINTS = ("https://app.prolific.com/", "https://workersandbox.mturk.com/", "https://www.mturk.com/")
MTURK_SANDBOX = "https://workersandbox.mturk.com"
STEP_TIMEOUT_MS = 15_000
ANSWER_EXPECTED_JS = "() => { const b = document.getElementById('answer-fake'); return !!b && !b.disabled; }"
# The answer buttons are enabled, or the pause between HYPE-time blocks is on screen.
ANSWER_OR_PAUSE_JS = """() => {
  const p = document.getElementById('pause');
  if (p && !p.hidden) return 'pause';
  const b = document.getElementById('answer-fake');
  return !!b && !b.disabled ? 'answer' : false;
}"""


# -- the app on 127.0.0.1 ------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per image is noise in test output
        pass


class LiveServer:
    """A WSGI app on 127.0.0.1 at a free port, served by a thread; ``stop()`` shuts it down and joins."""

    def __init__(self, app: Any) -> None:
        self._server = make_server(LOCAL_HOST, 0, app, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://{LOCAL_HOST}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"live-server-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> "LiveServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- Chromium ------------------------------------------------------------------------------------------


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


@dataclass
class Outbound:
    """One request that tried to leave 127.0.0.1."""

    url: str
    method: str
    post_data: str | None
    answered: bool  # True: a known endpoint, answered with a stub; False: refused

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.post_data or "").items()}


@dataclass
class NetworkGuard:
    """Routes every request of a browser context: 127.0.0.1 passes, the platforms' completion
    endpoints get a stub page (and are recorded), anything else is aborted (and recorded)."""

    requests: list[Outbound] = field(default_factory=list)

    def handle(self, route: Any, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob") or (parts.scheme in ("http", "https") and parts.hostname == LOCAL_HOST):
            route.continue_()
            return
        known = request.url.startswith(EXTERNAL_ENDPOINTS)
        self.requests.append(Outbound(request.url, request.method, request.post_data, known))
        if known:
            route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>stub</title><p id=stub>intercepted")
        else:
            route.abort("blockedbyclient")

    @property
    def answered(self) -> list[Outbound]:
        return [r for r in self.requests if r.answered]

    @property
    def refused(self) -> list[Outbound]:
        return [r for r in self.requests if not r.answered]


def new_context(browser: Any, guard: NetworkGuard, *, viewport: tuple[int, int] = (1280, 720), bypass_csp: bool = False,
                javascript: bool = True) -> Any:
    """``bypass_csp``: let a test inject a script (axe-core) that the pages' CSP would refuse;
    ``javascript=False``: a browser without JavaScript (pages must still work: progressive enhancement)."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1,
                                  bypass_csp=bypass_csp, java_script_enabled=javascript)
    context.route("**/*", guard.handle)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    return context


# -- a worker ------------------------------------------------------------------------------------------

Decide = Callable[[int, dict[str, Any], bool], bool]  # (index in phase, trial payload, is_fake) -> judged fake


def always_correct(_k: int, _trial: dict[str, Any], is_fake: bool) -> bool:
    return is_fake


def always_wrong(_k: int, _trial: dict[str, Any], is_fake: bool) -> bool:
    return not is_fake


def entry_query(platform: str, **ids: str) -> dict[str, str]:
    """The query string a crowd platform appends to the study link."""
    if platform == "plain":
        return {}
    if platform == "mturk":
        return {
            "assignmentId": ids.get("assignmentId", "ASSIGN1"),
            "hitId": ids.get("hitId", "HIT1"),
            "workerId": ids.get("workerId", "WORKER1"),
            "turkSubmitTo": ids.get("turkSubmitTo", MTURK_SANDBOX),
        }
    if platform == "prolific":
        return {
            "PROLIFIC_PID": ids.get("PROLIFIC_PID", "PID1"),
            "STUDY_ID": ids.get("STUDY_ID", "STUDY1"),
            "SESSION_ID": ids.get("SESSION_ID", "SESSION1"),
        }
    raise ValueError(platform)


@dataclass
class Answered:
    """One trial as the test saw it: the payload the page received, the truth and the answer given."""

    trial: dict[str, Any]
    is_fake: bool
    judged_fake: bool

    @property
    def token(self) -> str:
        return self.trial["id"]


class Worker:
    """Drives one page through a session. ``truth(image_token) -> is_fake`` looks the label up
    server side (the page never learns it); ``by`` is "key" or "click"."""

    def __init__(self, page: Any, base_url: str, truth: Callable[[str], bool]) -> None:
        self.page = page
        self.base_url = base_url
        self.truth = truth
        self.image_requests: list[str] = []  # trial image tokens, in the order the page fetched them
        # Responses that told the page which trial to show: GET .../trial, and POST .../answers (`next`).
        self.trial_responses: list[Any] = []
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        self.pauses = 0  # breaks between HYPE-time blocks taken so far
        self.pause_ms = 0  # how long each break lasts
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("console", lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None)

    # events
    def _on_request(self, request: Any) -> None:
        path = urlsplit(request.url).path
        if path.startswith("/api/w/") and "/img/" in path:
            self.image_requests.append(path.rsplit("/", 1)[-1])

    def _on_response(self, response: Any) -> None:
        path = urlsplit(response.url).path
        method = response.request.method
        if path.startswith("/api/w/") and (
            (path.endswith("/trial") and method == "GET") or (path.endswith("/answers") and method == "POST" and response.ok)
        ):
            self.trial_responses.append(response)

    # navigation
    @property
    def token(self) -> str:
        path = urlsplit(self.page.url).path
        assert path.startswith("/w/"), f"not on a session page: {self.page.url}"
        return path.split("/")[2]

    def wait_page(self, selector: str) -> None:
        """Waits for a page matching ``selector`` and for its scripts to have run. The body's
        data-page is there as soon as parsing starts, while worker.js (at the end of the body) has
        not attached its handlers yet: a key pressed then is lost, as a real worker's would be."""
        self.page.wait_for_selector(selector)
        self.page.wait_for_load_state("domcontentloaded")

    def open(self, slug: str, query: dict[str, str] | None = None) -> None:
        q = f"?{urlencode(query)}" if query else ""
        self.page.goto(f"{self.base_url}/s/{slug}{q}")
        self.wait_page("body[data-page=start]")

    def _press_button(self, selector: str, by: str) -> None:
        if by == "click":
            self.page.click(selector)
        else:  # keyboard: focus the button, press Enter
            self.page.focus(selector)
            self.page.keyboard.press("Enter")

    def consent(self, by: str = "key") -> None:
        self._press_button("#consent", by)
        self.wait_page("body[data-page=instructions]")

    def instructions(self, by: str = "key") -> None:
        self._press_button("#continue", by)
        # The browser check runs by itself and moves on; a refusal would show #check-error.
        try:
            self.wait_page("body[data-page=trials], #check-error:not([hidden])")
        except Exception as exc:
            raise AssertionError(f"stuck after the instructions at {self.page.url}: {self.describe()}") from exc
        error = self.page.query_selector("#check-error:not([hidden])")
        assert error is None, f"browser check refused: {error.inner_text()}"

    def wait_phase(self, phase: str) -> None:
        self.wait_page(f"body[data-page=trials][data-phase={phase}]")

    def start_phase(self, phase: str, by: str = "key") -> None:
        self.wait_phase(phase)
        if by == "click":
            self.page.click("#start")
        else:
            self.page.keyboard.press(" ")
        self.page.wait_for_selector("#stage:not([hidden])")

    def wait_answer_expected(self) -> dict[str, Any]:
        """Waits until the answer buttons are enabled; returns the trial the page is showing."""
        # Polled every 10 ms: wait_for_selector backs off to 500 ms between checks, which would add
        # a quarter second per trial. A timer, not rAF, so the check never runs inside the runner's frames.
        while self.page.wait_for_function(ANSWER_OR_PAUSE_JS, polling=10).json_value() == "pause":
            self.pauses += 1
            if self.pause_ms:
                self.page.wait_for_timeout(self.pause_ms)
            self.page.click("#pause-continue")
            self.page.wait_for_selector("#pause", state="hidden")
        assert self.trial_responses, "an answer is expected but the page fetched no trial"
        last = self.trial_responses[-1]
        payload = last.json()
        if urlsplit(last.url).path.endswith("/answers"):
            payload = payload["next"]
        trial = payload["trial"]
        assert trial is not None, payload
        assert trial["id"] in self.image_requests, "the trial shown was never fetched as an image"
        return trial

    def answer(self, judged_fake: bool, by: str = "key") -> None:
        if by == "click":
            self.page.click("#answer-fake" if judged_fake else "#answer-real")
        else:
            self.page.keyboard.press("f" if judged_fake else "j")

    def answer_trial(self, k: int, decide: Decide, by: str = "key", *, expect_feedback: bool = False) -> Answered:
        trial = self.wait_answer_expected()
        is_fake = self.truth(trial["id"])
        judged_fake = decide(k, trial, is_fake)
        self.answer(judged_fake, by)
        if expect_feedback:  # HYPE-time: "Correct" / "Incorrect" for 700 ms after the answer is stored
            correct = judged_fake == is_fake
            self.page.wait_for_selector("#overlay.good" if correct else "#overlay.bad", timeout=5_000)
        return Answered(trial, is_fake, judged_fake)

    def run_phase(self, phase: str, n: int, decide: Decide = always_correct, by: str = "key", *,
                  expect_feedback: bool = False, start: bool = True, first_index: int = 0) -> list[Answered]:
        if start:
            self.start_phase(phase, by)
        return [self.answer_trial(k, decide, by, expect_feedback=expect_feedback) for k in range(first_index, n)]

    def wait_done(self) -> None:
        self.wait_page("body[data-page=done]")

    def progress_text(self) -> str:
        return self.page.inner_text("#progress-text")

    def describe(self) -> str:
        """The page's state in one line, for failure messages."""
        try:
            text = self.page.inner_text("body")[:300].replace("\n", " | ")
        except Exception as exc:  # noqa: BLE001 - best effort while failing
            text = f"(no text: {exc})"
        return f"page text: {text!r}; JS errors: {self.page_errors}; console errors: {self.console_errors}"

    def assert_clean(self) -> None:
        assert not self.page_errors, f"JavaScript errors: {self.page_errors}"


# -- what the database must hold after a session --------------------------------------------------------

TIMING_FLAGS = {"no-timing", "exposure-off", "mask-missing", "mask-off"}


def check_judgments(db_records: Any, token: str, answered: list[Answered], *, stage: str,
                    phases: tuple[str, ...]) -> tuple[Any, list[Any], list[Any]]:
    """Every planned trial of ``phases`` answered exactly once, in the server's order, with the answer
    the worker gave, and nothing else recorded; a finished session has its own completion code. Returns (assignment, planned trials, judgments)."""
    a = db_records.assignment(token)
    assert a.stage == stage
    study_codes = (a.study.completion_code, a.study.qualification_fail_code)
    if stage in ("completed", "failed"):  # the session's own code, never the study's shared ones
        assert a.completion_code and a.completion_code not in study_codes
    planned = [t for t in db_records.trials(a) if t.phase in phases]
    judgments = db_records.judgments(a)
    trial_ids = [j.trial_id for j in judgments]
    assert len(judgments) == len(planned) == len(answered), (len(judgments), len(planned), len(answered))
    assert len(set(trial_ids)) == len(trial_ids), "a trial was recorded twice"
    assert set(trial_ids) == {t.id for t in planned}
    assert [x.token for x in answered] == [t.image_token for t in planned], "trials were not shown in the server's order"
    by_token = {t.image_token: t for t in planned}
    judged = {j.trial_id: j for j in judgments}
    for x in answered:
        j = judged[by_token[x.token].id]
        assert j.judged_fake == x.judged_fake, "the key / button pressed is not the answer stored"
        assert j.correct == (x.judged_fake == x.is_fake)
    return a, planned, judgments


def check_timed_trials(settings: dict[str, Any], planned: list[Any], judgments: list[Any], answered: list[Answered],
                       reshown: frozenset[str] = frozenset(), maybe_reshown: frozenset[str] = frozenset()) -> None:
    """HYPE-time task trials: the page got the server's exposure, masks and countdown; the client sent
    a measurement for the image and every mask; the server's timing flags agree with those numbers.
    The runner fetches each image once (preloaded), so only the trials in ``reshown`` (image tokens
    whose image a reload fetched again) are flagged shown-again, and each was delivered twice; one in
    ``maybe_reshown`` (a preload a reload may have cut short) is flagged exactly when delivered twice."""
    t = settings["time"]
    payload = {x.token: x.trial for x in answered}
    judged = {j.trial_id: j for j in judgments}
    for trial in planned:
        j, shown = judged[trial.id], payload[trial.image_token]
        if trial.phase != "task":
            assert not shown["timed"] and shown["exposure_ms"] is None and j.requested_ms is None
            continue
        assert shown["timed"] and shown["exposure_ms"] == trial.requested_ms == j.requested_ms
        assert len(shown["masks"]) == t["n_masks"] and shown["mask_ms"] == t["mask_ms"]
        assert shown["countdown"] == {"steps": t["countdown_steps"], "ms": t["countdown_ms"]}
        assert j.measured_ms is not None and j.refresh_interval_ms and len(j.mask_measured_ms) == t["n_masks"]
        frame = j.refresh_interval_ms + 1e-6
        off = abs(j.measured_ms - j.requested_ms) > frame
        masks_off = any(abs(m - t["mask_ms"]) > frame for m in j.mask_measured_ms)
        reasons = set((j.flag_reasons or "").split(","))
        assert ("exposure-off" in reasons) == off and ("mask-off" in reasons) == masks_off, (j.flag_reasons, j.measured_ms, j.mask_measured_ms)
        assert not reasons & {"no-timing", "mask-missing"}, j.flag_reasons
        if trial.image_token in maybe_reshown:
            assert ("shown-again" in reasons) == (trial.presentations > 1), (j.flag_reasons, trial.presentations)
        else:
            assert ("shown-again" in reasons) == (trial.image_token in reshown), (j.flag_reasons, trial.presentations)
            assert trial.presentations == (2 if trial.image_token in reshown else 1), trial.presentations
        stamps = j.client_timestamps
        if t["countdown_steps"]:
            countdown = stamps["image_on"] - stamps["countdown_on"]
            assert abs(countdown - t["countdown_steps"] * t["countdown_ms"]) <= (t["countdown_steps"] + 1) * j.refresh_interval_ms


# -- layout ------------------------------------------------------------------------------------------------

# Text of every confidence interval (class "ci") laid out on more than one line: "18.8 –" above "77.1"
# reads as two numbers. (Pages and the report mark each interval with that class.)
_WRAPPED_INTERVALS_JS = """
() => Array.from(document.querySelectorAll('.ci')).filter((el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = new Set(Array.from(range.getClientRects()).filter((r) => r.width > 0).map((r) => Math.round(r.top)));
  return tops.size > 1;
}).map((el) => el.textContent)
"""


def wrapped_intervals(page: Any) -> list[str]:
    """The intervals on the page that wrap (none should); asserts the page shows some to check."""
    assert page.locator(".ci").count() > 0, "no interval on the page to check"
    return page.evaluate(_WRAPPED_INTERVALS_JS)

"""A simulated crowd: N workers, each a browser doing one whole session through the worker JSON API
the way static/worker.js does (entry, instructions, browser check, qualification, task), with think
times taken from the protocol (countdown, exposure, masks, feedback) plus a person's reaction time.

Answers come from hype.simulate observers, which need each trial's truth: it is read from the
database once per session (`oracle`), never from the API. Every request is retried on a connection
error or a 5xx until the crowd's deadline, answers with the same idempotency key, as the browser does;
so a server killed mid-run (the crash test) is survived by waiting for it to come back.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

import aiohttp
import numpy as np

from crowd_setup import AnswerRecord
from hype.sessions import FINISHED_STAGES
from hype.simulate import Observer

FRAME_MS = 1000 / 60
FEEDBACK_MS = 700.0  # static/worker.js shows "Correct" / "Incorrect" this long
CHECK_MS = 90 * FRAME_MS  # the browser check measures 90 animation frames
INSTRUCTIONS_MS = 8000.0
# HYPE-infinity: a free look, then a key press. Stein et al. 2023 (../shared/data, ImageNet 256 x 256,
# 279 participants x 200 images) released per-participant response times: the median participant took
# 1.40 s per image, quartiles 1.10 and 2.00 s, hence a log-normal with median 1.4 s and sigma 0.44.
UNTIMED_RT_MEDIAN_MS = 1400.0
UNTIMED_RT_SIGMA = 0.44
TIMED_RT_MEDIAN_MS = 650.0  # HYPE-time: answer after the masks
TIMED_RT_SIGMA = 0.35
Oracle = Callable[[str], Awaitable[dict[str, bool]]]


@dataclass(frozen=True)
class CrowdPlan:
    base_url: str
    slugs: tuple[str, ...]  # workers are spread over these studies in turn
    n_workers: int
    ramp_s: float = 10.0  # arrivals spread uniformly over this long
    think_scale: float = 1.0  # 1.0 = a person's pace; < 1 compresses every wait
    deadline_s: float = 900.0  # nobody retries past this (from the crowd's start)
    seed: int = 0
    reload_share: float = 0.0  # workers who, when the server stops answering, reload the page
    # the pages too, as a browser loads them: the study link's start page, each stage's page
    # (/w/<token>, which static/worker.js goes to whenever the stage changes) with its stylesheet and
    # script (asked again on every page: they are served with no-cache), a trial page's progress
    # (GET /api/w/<token>); off, only the JSON API and the images
    pages: bool = False


@dataclass
class CrowdLog:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)  # (endpoint, what) -> count, retried ones included
    acknowledged: list[AnswerRecord] = field(default_factory=list)
    refused: list[AnswerRecord] = field(default_factory=list)  # a 4xx: the server said it was not stored
    unsettled: list[AnswerRecord] = field(default_factory=list)  # no reply before the deadline
    abandoned: list[AnswerRecord] = field(default_factory=list)  # in flight when its worker reloaded
    resumed: list[tuple[str, str]] = field(default_factory=list)  # (token before, token after) a reload
    final_stage: dict[str, str] = field(default_factory=dict)  # session token -> stage at the end
    unfinished: list[str] = field(default_factory=list)  # workers that did not reach completed / failed
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def wall_s(self) -> float:
        return self.finished_at - self.started_at


class GaveUp(Exception):
    """The deadline passed before a request got an answer."""


class Reload(Exception):
    """The worker pressed reload: state in the page is gone; the session must come back from the link."""


class SimulatedWorker:
    def __init__(self, index: int, plan: CrowdPlan, log: CrowdLog, oracle: Oracle, rng: np.random.Generator):
        self.index = index
        self.plan = plan
        self.log = log
        self.oracle = oracle
        self.rng = rng
        self.slug = plan.slugs[index % len(plan.slugs)]
        self.deadline = 0.0
        self.fetched: set[str] = set()
        self.assets: dict[str, str] = {}  # static file -> its Last-Modified, as a browser's cache keeps it
        self.next_state: dict[str, Any] | None = None  # the trial an answer's reply carried
        self.reloads = bool(rng.random() < plan.reload_share)
        self.params = {"PROLIFIC_PID": f"load{index:05d}{secrets.token_hex(4)}", "STUDY_ID": "load", "SESSION_ID": f"s{index}"}
        ability = rng.normal(1.4, 0.5)  # logit of p(correct) with unlimited time
        self.observer = Observer(fake_accuracy=float(1 / (1 + np.exp(-ability))),
                                 real_accuracy=float(1 / (1 + np.exp(-ability - rng.normal(0, 0.3)))),
                                 scale_ms=float(rng.lognormal(np.log(250), 0.3)), slope=2.0, lapse=0.03)

    async def think(self, ms: float) -> None:
        await asyncio.sleep(max(0.0, ms) * self.plan.think_scale / 1000)

    async def call(self, http: aiohttp.ClientSession, method: str, path: str, endpoint: str, *,
                   json: Any = None, want_bytes: bool = False, headers: dict[str, str] | None = None,
                   header: str | None = None) -> Any:
        """One request, retried on connection errors and 5xx (jittered backoff) until the deadline:
        (status, body), and the response's ``header`` as a third item when one is named."""
        backoff = 0.2
        while True:
            begun = time.perf_counter()
            try:
                async with http.request(method, self.plan.base_url + path, json=json, headers=headers) as response:
                    body = await (response.read() if want_bytes else response.json(content_type=None))
                    self.log.latencies_ms[endpoint].append((time.perf_counter() - begun) * 1000)
                    if response.status < 500:
                        if response.status >= 400:
                            self.log.errors[(endpoint, str(response.status))] += 1
                        if header is not None:
                            return response.status, body, response.headers.get(header)
                        return response.status, body
                    self.log.errors[(endpoint, str(response.status))] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                self.log.errors[(endpoint, type(exc).__name__)] += 1
                if self.reloads and endpoint in ("instructions", "check", "trial", "answer", "image") \
                        and isinstance(exc, aiohttp.ClientConnectionError):
                    raise Reload() from exc
            if time.monotonic() + backoff > self.deadline:
                raise GaveUp(f"{method} {path}")
            await asyncio.sleep(backoff * (0.5 + self.rng.random()))
            backoff = min(backoff * 2, 2.0)

    async def run(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.plan.ramp_s))
        connector = aiohttp.TCPConnector(limit=6)  # a browser's per-host connection limit
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as http:
            token = None
            try:
                if self.plan.pages:
                    await self.page(http, f"/s/{self.slug}?" + urlencode(self.params), None)
                token, stage = await self.enter(http)
                truth = await self.oracle(token)
                if self.plan.pages:
                    await self.page(http, f"/w/{token}", stage, token)
                while stage not in FINISHED_STAGES:
                    try:
                        was, stage = stage, await self.step(http, token, stage, truth)
                    except Reload:
                        was, stage = None, await self.reload(http, token)
                    if self.plan.pages and stage != was:  # static/worker.js goes to the stage's page
                        await self.page(http, f"/w/{token}", stage, token)
                self.log.final_stage[token] = stage
            except GaveUp as exc:
                self.log.unfinished.append(f"worker {self.index} ({token and token[:8]}): gave up on {exc}")

    async def reload(self, http: aiohttp.ClientSession, token: str) -> str:
        """As a reloaded page does: ask the server where the session is (its page, by token). If it is
        not over, come back in through the study link as well, which must find the same session (the
        platform ids are the same); then go on from GET /trial. Once per worker."""
        self.next_state, self.reloads = None, False
        status, body = await self.call(http, "GET", f"/api/w/{token}", "state")
        if status != 200:
            raise GaveUp(f"state after a reload answered {status}: {body}")
        if body["stage"] in FINISHED_STAGES:  # the answer in flight was the last one
            self.log.resumed.append((token, token))
            return body["stage"]
        again, stage = await self.enter(http)
        self.log.resumed.append((token, again))
        return stage

    async def page(self, http: aiohttp.ClientSession, path: str, stage: str | None, token: str | None = None) -> None:
        """A page as the browser loads it: the HTML, its stylesheet and script (revalidated each time,
        as their no-cache asks; the favicon once), and on a trial page the progress."""
        status, _ = await self.call(http, "GET", path, "page", want_bytes=True)
        if status != 200:
            raise GaveUp(f"page {path} answered {status}")
        for asset in ("/static/hype.css", "/static/worker.js", *(() if self.assets else ("/static/favicon.ico",))):
            headers = {"If-Modified-Since": self.assets[asset]} if asset in self.assets else None
            status, _, last_modified = await self.call(http, "GET", asset, "static", want_bytes=True, headers=headers,
                                                       header="Last-Modified")
            if status == 200 and last_modified:
                self.assets[asset] = last_modified
        if stage in ("qualification", "task") and token is not None:
            await self.call(http, "GET", f"/api/w/{token}", "state")

    async def enter(self, http: aiohttp.ClientSession) -> tuple[str, str]:
        status, body = await self.call(http, "POST", f"/api/s/{self.slug}/sessions", "entry",
                                       json={"consent": True, "params": self.params})
        if status not in (200, 201):
            raise GaveUp(f"entry answered {status}: {body}")
        return body["token"], body["stage"]

    async def step(self, http: aiohttp.ClientSession, token: str, stage: str, truth: dict[str, bool]) -> str:
        api = f"/api/w/{token}"
        if stage == "instructions":
            await self.fetch(http, f"{api}/examples/real")
            await self.fetch(http, f"{api}/examples/fake")
            await self.think(INSTRUCTIONS_MS)
            status, body = await self.call(http, "POST", f"{api}/instructions", "instructions", json={})
        elif stage == "check":
            await self.think(CHECK_MS)
            status, body = await self.call(http, "POST", f"{api}/check", "check",
                                           json={"refresh_interval_ms": FRAME_MS, "window_width": 1280, "window_height": 900})
        elif stage in ("qualification", "task"):
            return await self.trial(http, api, token, truth)
        else:
            status, body = await self.call(http, "GET", api, "state")
        if status != 200:
            raise GaveUp(f"{stage} answered {status}: {body}")
        return body["stage"]

    async def fetch(self, http: aiohttp.ClientSession, url: str) -> None:
        """A browser fetches each image once (the next trial's during this one, as a preload)."""
        if url not in self.fetched:
            status, body = await self.call(http, "GET", url, "image", want_bytes=True)
            if status == 200 and not body.startswith(b"\x89PNG\r\n\x1a\n"):
                self.log.errors[("image", "not a PNG")] += 1  # e.g. a redirect to a file nobody sent
            self.fetched.add(url)

    async def trial(self, http: aiohttp.ClientSession, api: str, token: str, truth: dict[str, bool]) -> str:
        state, self.next_state = self.next_state, None
        if state is None:  # the first trial of a stage, or a resume: as static/worker.js, GET it
            status, state = await self.call(http, "GET", f"{api}/trial", "trial")
            if status != 200:
                raise GaveUp(f"trial answered {status}: {state}")
        trial = state["trial"]
        if trial is None:
            return state["stage"]
        await self.fetch(http, trial["image_url"])
        for mask in trial["masks"]:
            await self.fetch(http, mask)
        judged_fake = self.observer.respond(truth[trial["id"]], trial["exposure_ms"], self.rng)
        median, sigma = (TIMED_RT_MEDIAN_MS, TIMED_RT_SIGMA) if trial["timed"] else (UNTIMED_RT_MEDIAN_MS, UNTIMED_RT_SIGMA)
        reaction = float(self.rng.lognormal(np.log(median), sigma))
        if trial["timed"]:
            countdown = trial["countdown"]["steps"] * trial["countdown"]["ms"]
            await self.think(countdown + trial["exposure_ms"] + len(trial["masks"]) * trial["mask_ms"] + reaction)
        else:
            await self.think(reaction)
        for url in state["preload"]:
            await self.fetch(http, url)
        record = AnswerRecord(token, secrets.token_urlsafe(12), trial["id"], judged_fake)
        body = {"trial": record.trial, "response": "fake" if judged_fake else "real", "idempotency_key": record.key,
                **faithful_timing(trial, reaction)}
        try:
            status, result = await self.call(http, "POST", f"{api}/answers", "answer", json=body)
        except GaveUp:
            self.log.unsettled.append(record)
            raise
        except Reload:
            self.log.abandoned.append(record)
            raise
        if status in (200, 201):
            self.log.acknowledged.append(record)
        else:
            self.log.refused.append(record)
            raise GaveUp(f"answer refused with {status}: {result}")
        if result.get("feedback"):
            await self.think(FEEDBACK_MS)
        self.next_state = result.get("next")
        return result["stage"]


def faithful_timing(trial: dict[str, Any], reaction_ms: float) -> dict[str, Any]:
    """What a 60 Hz browser that showed the trial exactly as asked would report."""
    if not trial["timed"]:
        return {"measured_ms": reaction_ms, "mask_measured_ms": [], "refresh_interval_ms": FRAME_MS, "reaction_ms": reaction_ms}
    frames = max(1, round(trial["exposure_ms"] / FRAME_MS))
    mask_frames = max(1, round(trial["mask_ms"] / FRAME_MS))
    return {"measured_ms": frames * FRAME_MS, "mask_measured_ms": [mask_frames * FRAME_MS] * len(trial["masks"]),
            "refresh_interval_ms": FRAME_MS, "reaction_ms": reaction_ms}


async def run_crowd(plan: CrowdPlan, oracle: Callable[[str], dict[str, bool]],
                    during: Callable[[CrowdLog], Awaitable[None]] | None = None) -> CrowdLog:
    """Run every worker to the end of its session (or the deadline). ``during`` runs beside the crowd
    (the crash test kills and restarts the server from there)."""
    log = CrowdLog()
    rng = np.random.default_rng(plan.seed)

    async def ask_oracle(token: str) -> dict[str, bool]:
        return await asyncio.to_thread(oracle, token)

    log.started_at = time.monotonic()
    workers = [SimulatedWorker(i, plan, log, ask_oracle, np.random.default_rng(rng.integers(2**63))) for i in range(plan.n_workers)]
    for worker in workers:
        worker.deadline = log.started_at + plan.deadline_s
    tasks = [asyncio.create_task(w.run()) for w in workers]
    side = asyncio.create_task(during(log)) if during else None
    if side:
        # A failure beside the crowd (a server that did not come back) ends the run at once, rather
        # than after every worker has retried up to the deadline.
        await asyncio.wait([side, *tasks], return_when=asyncio.FIRST_EXCEPTION)
        if side.done() and side.exception() is not None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise side.exception()
    await asyncio.gather(*tasks)
    if side:
        await side
    log.finished_at = time.monotonic()
    return log


def run_crowd_blocking(plan: CrowdPlan, oracle: Callable[[str], dict[str, bool]],
                       during: Callable[[CrowdLog], Awaitable[None]] | None = None) -> CrowdLog:
    """run_crowd from synchronous code, on an event loop in a thread of its own: the caller's thread may
    already run one (in the test suite, Playwright's sync API keeps a loop running in the main thread,
    and asyncio.run refuses to start a second there)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(run_crowd(plan, oracle, during))).result()


def percentile_table(log: CrowdLog) -> list[tuple[str, int, float, float, float, float]]:
    """(endpoint, requests, p50, p95, p99, max) in ms."""
    rows = []
    for endpoint in ("entry", "instructions", "check", "trial", "image", "answer", "state", "page", "static"):
        values = log.latencies_ms.get(endpoint)
        if values:
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            rows.append((endpoint, len(values), float(p50), float(p95), float(p99), float(max(values))))
    return rows

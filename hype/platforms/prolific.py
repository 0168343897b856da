"""A small client for Prolific's REST API (https://docs.prolific.com/api-reference).

Hand-written on `requests` because there is no maintained Python client for the researcher API, and
because paying needs a retry rule per call that a session-wide urllib3 `Retry` cannot express: a
429 means "not processed, try later" and is always retried (honouring Retry-After), but a 5xx or a
dropped connection is retried only for calls that are safe to repeat. Paying a bulk bonus is not
(Prolific's docs: sending it twice pays twice), so a failure there is reported, never retried.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import requests

from hype.platforms import PlatformError

API_URL = "https://api.prolific.com"
TOKEN_ENV = "HYPE_PROLIFIC_TOKEN"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ProlificError(PlatformError):
    def __init__(self, message: str, *, status: int | None = None, ambiguous: bool = False):
        super().__init__(message)
        self.status = status
        # True when the request may have been carried out although no answer came back.
        self.ambiguous = ambiguous


@dataclass
class ProlificClient:
    token: str
    base_url: str = API_URL
    max_attempts: int = 6
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    http: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def from_env(cls, **kwargs: Any) -> "ProlificClient":
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise ProlificError(f"set {TOKEN_ENV} to a Prolific API token (Prolific: Settings → API tokens)")
        base = os.environ.get("HYPE_PROLIFIC_API_URL", "").strip()
        if base:
            kwargs.setdefault("base_url", base)
        return cls(token=token, **kwargs)

    # -- transport ------------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                safe_to_repeat: bool) -> Any:
        url = path if path.startswith("http") else f"{self.base_url.rstrip('/')}{path}"
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.http.request(method, url, json=json, params=params, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                if safe_to_repeat and attempt < self.max_attempts:
                    self.sleep(self._delay(attempt, None))
                    continue
                raise ProlificError(f"Prolific did not answer {method} {path}: {type(exc).__name__}",
                                    ambiguous=not safe_to_repeat) from exc
            status = response.status_code
            retryable = status == 429 or (status in RETRY_STATUSES and safe_to_repeat)
            if retryable and attempt < self.max_attempts:
                self.sleep(self._delay(attempt, response.headers.get("Retry-After")))
                continue
            if status >= 400:
                raise ProlificError(f"Prolific refused {method} {path} ({status}): {_detail(response)}", status=status,
                                    ambiguous=status >= 500 and not safe_to_repeat)
            if status == 204 or not response.content:
                return None
            return response.json()
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff_s, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))

    def paginate(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every result of a list endpoint, following `_links.next.href` page by page."""
        page = self.request("GET", path, params=params, safe_to_repeat=True)
        while True:
            yield from page.get("results", [])
            next_url = ((page.get("_links") or {}).get("next") or {}).get("href")
            if not next_url:
                return
            page = self.request("GET", next_url, safe_to_repeat=True)

    # -- endpoints ---------------------------------------------------------------------------------------

    def create_study(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/v1/studies/", json=body, safe_to_repeat=False)

    def get_study(self, study_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v1/studies/{study_id}/", safe_to_repeat=True)

    def set_places(self, study_id: str, places: int) -> dict[str, Any]:
        """Setting an absolute number is safe to repeat (Prolific only lets it grow)."""
        return self.request("PATCH", f"/api/v1/studies/{study_id}/", json={"total_available_places": places}, safe_to_repeat=True)

    def publish(self, study_id: str) -> dict[str, Any]:
        return self.request("POST", f"/api/v1/studies/{study_id}/transition/", json={"action": "PUBLISH"}, safe_to_repeat=True)

    def submissions(self, study_id: str) -> Iterator[dict[str, Any]]:
        return self.paginate("/api/v1/submissions/", params={"study": study_id})

    def approve(self, submission_id: str) -> dict[str, Any]:
        return self.request("POST", f"/api/v1/submissions/{submission_id}/transition/", json={"action": "APPROVE"}, safe_to_repeat=True)

    def request_return(self, submission_id: str, reasons: list[str]) -> dict[str, Any]:
        return self.request("POST", f"/api/v1/submissions/{submission_id}/request-return/",
                            json={"request_return_reasons": reasons}, safe_to_repeat=True)

    def set_up_bonuses(self, study_id: str, rows: list[tuple[str, int]]) -> dict[str, Any]:
        """rows: (participant id, cents). Sets up, does not pay; safe to repeat (an unpaid set-up costs nothing)."""
        csv_bonuses = "".join(f"{pid},{cents // 100}.{cents % 100:02d}\n" for pid, cents in rows)
        return self.request("POST", "/api/v1/submissions/bonus-payments/", json={"study_id": study_id, "csv_bonuses": csv_bonuses},
                            safe_to_repeat=True)

    def pay_bonuses(self, bulk_id: str) -> Any:
        return self.request("POST", f"/api/v1/bulk-bonus-payments/{bulk_id}/pay/", safe_to_repeat=False)


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or "")[:200]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            detail = error.get("detail") or error
            return str(detail)[:300]
    return str(body)[:300]

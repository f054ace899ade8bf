"""One HTTP attempt to a subscriber: timed, bounded, never following redirects."""

import time
from dataclasses import dataclass

import httpx

from tasks.clients import parse_retry_after


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    duration_ms: int
    error: str | None
    excerpt: str | None
    retry_after: float | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(
    client: httpx.Client,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    total_timeout: float,
    excerpt_bytes: int,
) -> tuple[Attempt, httpx.HTTPError | None]:
    """POST once. Returns the attempt, and the transport error if there was no answer."""
    started = time.perf_counter()
    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            excerpt = _read_excerpt(response, excerpt_bytes, started + total_timeout)
    except httpx.HTTPError as exc:
        elapsed = int((time.perf_counter() - started) * 1000)
        return Attempt(None, elapsed, f"{type(exc).__name__}: {exc}"[:300], None, None), exc
    elapsed = int((time.perf_counter() - started) * 1000)
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    if response.is_redirect:
        error = f"HTTP {response.status_code}: redirects are not followed"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return Attempt(response.status_code, elapsed, error, excerpt, retry_after), None


def _read_excerpt(response: httpx.Response, limit: int, deadline: float) -> str:
    """Keep at most `limit` bytes of the answer, and stop reading at the attempt's deadline."""
    kept = bytearray()
    for chunk in response.iter_bytes():
        kept.extend(chunk[: max(0, limit - len(kept))])
        if len(kept) >= limit or time.perf_counter() > deadline:
            break
    return kept.decode("utf-8", errors="replace")

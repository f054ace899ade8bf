"""One HTTP attempt to a subscriber: timed, bounded, never following redirects.

httpx's timeouts bound each read, not the attempt: a subscriber that answers one byte a second
would hold it for as long as it likes. `Deadline` bounds the whole attempt (connect, headers,
body) by shutting the attempt's socket down when the time is up. It needs a connection of its
own per attempt, which `tasks.clients.webhook_client` gives (no keep-alive).
"""

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

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


class Deadline:
    """Shut an attempt's socket down `seconds` after it starts, whatever it is waiting for."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._timers: list[threading.Timer] = []

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: arm a timer on each new TCP connection's socket."""
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is None:
            return
        timer = threading.Timer(max(0.0, self.at - time.monotonic()), self._expire, (sock,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def _expire(self, sock: socket.socket) -> None:
        self.expired = True
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()


def post(
    client: httpx.Client,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    total_timeout: float,
    excerpt_bytes: int,
) -> tuple[Attempt, httpx.HTTPError | None]:
    """POST once, within `total_timeout` seconds in all. Returns the attempt, and the
    transport error if there was no complete answer in time."""
    started = time.perf_counter()
    deadline = Deadline(total_timeout)
    try:
        with client.stream(
            "POST", url, content=body, headers=headers, extensions={"trace": deadline.trace}
        ) as response:
            excerpt = _read_excerpt(response, excerpt_bytes, started + total_timeout)
    except httpx.HTTPError as caught:
        elapsed = int((time.perf_counter() - started) * 1000)
        failure = caught
        if deadline.expired:
            failure = httpx.TimeoutException(f"no complete answer within {total_timeout:g} s")
        text = f"{type(failure).__name__}: {failure}"[:300]
        return Attempt(None, elapsed, text, None, None), failure
    finally:
        deadline.cancel()
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

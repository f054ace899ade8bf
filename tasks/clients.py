"""Outside services: the one HTTP client of a process, made on first use from settings, and
how a provider's answer is sorted into success, a transient fault or a permanent one."""

import logging
import ssl
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import httpcore
import httpx
from pydantic import SecretStr

from booking.settings import get_settings
from booking.timeutil import utcnow
from tasks.errors import PermanentError, TransientError


@lru_cache(maxsize=1)
def http_client() -> httpx.Client:
    """Shared by every step of the process; redirects are never followed."""
    return _client(keep_alive=True)


def webhook_client(pinned: list[str]) -> httpx.Client:
    """For one attempt to a subscriber (close it after): its own connection, so the
    attempt's total deadline owns its socket and one subscriber's connection is never
    another's, made only to the `pinned` addresses the URL guard checked
    (tasks/delivery/guard.py). Cheap to make: the TLS context is made once per process."""
    return _client(keep_alive=False, transport=_PinnedTransport(pinned))


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """Certificate checks against certifi's roots, for every https call of the process."""
    return httpx.create_ssl_context(trust_env=False)


def _client(*, keep_alive: bool, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    settings = get_settings()
    # httpx logs each request's full URL at INFO; subscriber URLs may carry tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return httpx.Client(
        transport=transport,
        follow_redirects=False,
        timeout=httpx.Timeout(
            settings.webhook_timeout_seconds, connect=settings.webhook_connect_timeout_seconds
        ),
        limits=httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0),
        headers={"User-Agent": "booking-post-commit/0.1"},
        trust_env=False,
    )


def bearer(secret: SecretStr | None) -> dict[str, str]:
    """An Authorization header for a configured key; none when no key is set."""
    return {"Authorization": f"Bearer {secret.get_secret_value()}"} if secret else {}


def raise_for_provider(response: httpx.Response, provider: str) -> None:
    """2xx passes, 429 and 5xx are transient, any other status is permanent.

    The message names the provider and status only: bodies may echo credentials or data.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise TransientError(
            f"{provider} answered {status}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    raise PermanentError(f"{provider} answered {status}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())


class _PinnedBackend(httpcore.NetworkBackend):
    """httpcore's own network backend, except that TCP connections go to the given
    addresses in turn instead of to what the host resolves to now. httpcore still names the
    URL's host in the Host header and as the TLS server name (and checks its certificate)."""

    def __init__(self, addresses: list[str]):
        self._addresses = addresses
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if not self._addresses:
            raise httpcore.ConnectError(f"no checked address for {host}")
        for address in self._addresses:
            try:
                return self._backend.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's transport, no keep-alive, connecting only to `addresses`. httpx takes no
    network backend, so its connection pool is given ours (httpx and httpcore are pinned)."""

    def __init__(self, addresses: list[str]):
        super().__init__(
            verify=tls_context(), limits=httpx.Limits(max_keepalive_connections=0), trust_env=False
        )
        self._pool._network_backend = _PinnedBackend(addresses)

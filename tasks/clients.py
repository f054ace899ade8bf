"""Outside services: the one HTTP client of a process, made on first use from settings, and
how a provider's answer is sorted into success, a transient fault or a permanent one."""

import logging
from email.utils import parsedate_to_datetime
from functools import lru_cache

import httpx
from pydantic import SecretStr

from booking.settings import get_settings
from booking.timeutil import utcnow
from tasks.errors import PermanentError, TransientError


@lru_cache(maxsize=1)
def http_client() -> httpx.Client:
    """Shared by every step of the process; redirects are never followed."""
    return _client(keep_alive=True)


@lru_cache(maxsize=1)
def webhook_client() -> httpx.Client:
    """For subscribers: a connection per attempt (no keep-alive), so each attempt's total
    deadline owns its socket and one subscriber's connection is never another's."""
    return _client(keep_alive=False)


def _client(*, keep_alive: bool) -> httpx.Client:
    settings = get_settings()
    # httpx logs each request's full URL at INFO; subscriber URLs may carry tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return httpx.Client(
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

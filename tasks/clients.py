"""The HTTP client for outside services: one per process, made on first use from settings."""

import logging
from functools import lru_cache

import httpx
from pydantic import SecretStr

from booking.settings import get_settings


@lru_cache(maxsize=1)
def http_client() -> httpx.Client:
    """Shared by every step of the process; redirects are never followed."""
    settings = get_settings()
    # httpx logs each request's full URL at INFO; subscriber URLs may carry tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return httpx.Client(
        follow_redirects=False,
        timeout=httpx.Timeout(
            settings.webhook_timeout_seconds, connect=settings.webhook_connect_timeout_seconds
        ),
        headers={"User-Agent": "booking-post-commit/0.1"},
        trust_env=False,
    )


def bearer(secret: SecretStr | None) -> dict[str, str]:
    """An Authorization header for a configured key; none when no key is set."""
    return {"Authorization": f"Bearer {secret.get_secret_value()}"} if secret else {}

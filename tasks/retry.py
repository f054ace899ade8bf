"""The one retry policy every step declares: transient faults only, backoff with jitter.

Prefect's `retry_jitter_factor` does nothing for tasks in 3.x, so the delay list is randomised
here, once per decorated task (each process re-imports the flows, so workers differ).
"""

import random
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from sqlalchemy.exc import DBAPIError, OperationalError

from booking.models.types import utcnow

RETRIES = 4
BASE_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 120.0
JITTER = 0.5


class TransientHTTPError(Exception):
    """A provider answered 5xx or 429: worth another attempt."""

    def __init__(self, status_code: int, retry_after: float | None = None):
        self.status_code = status_code
        self.retry_after = retry_after
        super().__init__(f"provider answered {status_code}")


TRANSIENT = (
    TransientHTTPError,
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    OperationalError,
)


def backoff_delays(
    retries: int = RETRIES,
    base: float = BASE_DELAY_SECONDS,
    cap: float = MAX_DELAY_SECONDS,
    jitter: float = JITTER,
    rng: random.Random | None = None,
) -> list[float]:
    """Exponential delays (base, 2*base, 4*base ...) each stretched by up to +`jitter`."""
    rng = rng or random.Random()
    return [
        round(min(cap, base * 2**attempt) * (1 + rng.uniform(0, jitter)), 3)
        for attempt in range(retries)
    ]


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, TRANSIENT)


def retry_transient(task: object, task_run: TaskRun, state: State) -> bool:
    """`retry_condition_fn` for every step: retry timeouts, connection errors, 5xx and 429."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return exc is not None and is_transient(exc)


class ProviderRejected(Exception):
    """A provider refused the request with a 4xx a retry cannot fix."""


def raise_for_provider(response: httpx.Response, provider: str) -> None:
    """Sort a provider's answer: 2xx passes, 429/5xx retry, any other status fails for good.

    The message names the provider and status only: bodies may echo credentials or data.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise TransientHTTPError(status, parse_retry_after(response.headers.get("Retry-After")))
    raise ProviderRejected(f"{provider} answered {status}")


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


def with_policy(step: Task, *, retries: int, base_seconds: float) -> Task:
    """The step with this deployment's retry count and first delay (settings decide)."""
    return step.with_options(
        retries=retries, retry_delay_seconds=backoff_delays(retries, base=base_seconds)
    )


def step_policy(retries: int = 3, base_seconds: float = 1.0) -> dict[str, Any]:
    """Keyword arguments for `@task`: transient-only retries with jittered backoff, no cache."""
    from prefect.cache_policies import NO_CACHE

    return {
        "retries": retries,
        "retry_delay_seconds": backoff_delays(retries, base=base_seconds),
        "retry_condition_fn": retry_transient,
        "cache_policy": NO_CACHE,
    }


# Local database steps: a few quick retries for a dropped connection or a lock.
DB_STEP = step_policy()
# Calls to outside services: the flows override count and delay from settings.
PROVIDER_STEP = step_policy(retries=RETRIES, base_seconds=BASE_DELAY_SECONDS)

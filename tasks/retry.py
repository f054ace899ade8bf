"""The one retry policy every step declares: transient faults only, exponential backoff with
Prefect's jitter.

Retry counts and first delays come from the settings, read once when the steps are imported:
a flow-run process imports them with its worker's environment.
"""

from typing import Any, Literal

import httpx
from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff
from sqlalchemy.exc import DBAPIError, OperationalError

from booking.settings import get_settings
from tasks.errors import TransientError

# Each delay is drawn around its mean, at most this fraction above it, so steps that failed
# together (a provider outage) do not retry in lockstep.
JITTER_FACTOR = 0.5
# Local database steps: a few quick retries for a dropped connection or a lock.
DATABASE_RETRIES = 3
DATABASE_FIRST_DELAY_SECONDS = 1.0

TRANSIENT = (
    TransientError,
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    OperationalError,
)

StepKind = Literal["database", "webhook", "provider"]


def is_transient(exc: BaseException) -> bool:
    """Timeouts, connection errors, 5xx and 429 answers, and lost database connections."""
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, TRANSIENT)


def retry_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """`retry_condition_fn` of every step: retry a transient fault, never a 4xx or a bug."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return exc is not None and is_transient(exc)


def step_policy(kind: StepKind) -> dict[str, Any]:
    """`@task` keyword arguments of a step: its retries (first delay doubling each time,
    jittered), transient faults only, and no result cache (every step is a side effect)."""
    settings = get_settings()
    retries, first_delay = {
        "database": (DATABASE_RETRIES, DATABASE_FIRST_DELAY_SECONDS),
        "webhook": (settings.webhook_retries, settings.webhook_retry_base_seconds),
        "provider": (settings.provider_retries, settings.provider_retry_base_seconds),
    }[kind]
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=first_delay),
        "retry_jitter_factor": JITTER_FACTOR,
        "retry_condition_fn": retry_transient,
        "cache_policy": NO_CACHE,
    }

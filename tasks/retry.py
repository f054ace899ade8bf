"""The one retry policy every step declares: transient faults only, exponential backoff with
Prefect's jitter.

A step declares its kind on its decorator (`**step_policy("webhook")`). Its retry count and
first delay come from the settings in force when a run starts: a flow submits each step
through `with_policy`, so a forked flow run, or a test that changes a setting, gets the
settings of its own environment, never those of the process that imported the steps.
"""

from functools import lru_cache
from typing import Any, Literal, TypeVar

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
StepTask = TypeVar("StepTask", bound=Task[..., Any])


def is_transient(exc: BaseException) -> bool:
    """Timeouts, connection errors, 5xx and 429 answers, and lost database connections."""
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, TRANSIENT)


class RetryTransient:
    """`retry_condition_fn` of every step: retry a transient fault, never a 4xx or a bug.

    It also carries the step's kind, which `with_policy` turns into retries and delays."""

    def __init__(self, kind: StepKind):
        self.kind: StepKind = kind

    def __call__(self, task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
        exc = state.data if isinstance(state.data, BaseException) else None
        return exc is not None and is_transient(exc)


def step_policy(kind: StepKind) -> dict[str, Any]:
    """`@task` keyword arguments of a step: transient faults only, jittered delays, no result
    cache (every step is a side effect), and the kind whose settings `with_policy` applies."""
    return {
        "retry_condition_fn": RetryTransient(kind),
        "retry_jitter_factor": JITTER_FACTOR,
        "cache_policy": NO_CACHE,
    }


def retry_schedule(kind: StepKind) -> tuple[int, float]:
    """The kind's retry count and first delay (doubling each time), from the settings now."""
    settings = get_settings()
    return {
        "database": (DATABASE_RETRIES, DATABASE_FIRST_DELAY_SECONDS),
        "webhook": (settings.webhook_retries, settings.webhook_retry_base_seconds),
        "provider": (settings.provider_retries, settings.provider_retry_base_seconds),
    }[kind]


def with_policy(step: StepTask) -> StepTask:
    """The step with its kind's retries and delays as the settings say now; flows submit
    every step through it when their run starts."""
    condition = step.retry_condition_fn
    if not isinstance(condition, RetryTransient):
        raise TypeError(f"step {step.name!r} does not declare step_policy(kind)")
    return _applied(step, *retry_schedule(condition.kind))


@lru_cache(maxsize=64)
def _applied(step: Task[..., Any], retries: int, first_delay: float) -> Any:
    return step.with_options(
        retries=retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=first_delay),
    )

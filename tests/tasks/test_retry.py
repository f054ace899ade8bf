import httpx
import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client

from tasks.delivery.guard import RefusedURL
from tasks.errors import PermanentError, TransientError
from tasks.retry import JITTER_FACTOR, is_transient, step_policy, with_policy
from tests.helpers import settled_task_runs


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (TransientError("provider answered 503"), True),
        (TransientError("provider answered 429", retry_after=3), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (PermanentError("404"), False),
        (RefusedURL("internal"), False),
        (KeyError("bug"), False),
    ],
)
def test_only_transient_faults_are_retried(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


@task(name="a webhook step", **step_policy("webhook"))
def webhook_step() -> None:
    """A step of the webhook kind."""


def test_a_step_gets_the_settings_in_force_when_its_run_starts(configure) -> None:
    configure(webhook_retries="4", webhook_retry_base_seconds="5")
    four = with_policy(webhook_step)
    configure(webhook_retries="2", webhook_retry_base_seconds="1")
    two = with_policy(webhook_step)

    assert four.retries == 4 and four.retry_delay_seconds == [5, 10, 20, 40]
    assert two.retries == 2 and two.retry_delay_seconds == [1, 2]
    assert two.retry_jitter_factor == JITTER_FACTOR and two.name == webhook_step.name


def test_a_step_without_a_declared_kind_is_refused() -> None:
    @task(name="undeclared")
    def undeclared() -> None: ...

    with pytest.raises(TypeError, match="undeclared"):
        with_policy(undeclared)


def test_prefect_jitters_the_retry_delays_of_a_step(prefect_server, configure) -> None:
    configure(provider_retries="3", provider_retry_base_seconds="0.2")
    calls: list[int] = []

    @task(name="flaky provider call", **step_policy("provider"))
    def flaky() -> str:
        calls.append(1)
        if len(calls) <= 3:
            raise TransientError("provider answered 503")
        return "done"

    @flow
    def one_step() -> str:
        return with_policy(flaky).submit().result()

    state = one_step(return_state=True)

    assert state.is_completed() and len(calls) == 4
    (run,) = settled_task_runs(state.state_details.flow_run_id)
    with get_client(sync_client=True) as client:
        waits = [
            (s.state_details.scheduled_time - s.timestamp).total_seconds()
            for s in client.read_task_run_states(run.id)
            if s.name == "AwaitingRetry"
        ]
    exact = [0.2, 0.4, 0.8]
    assert len(waits) == 3 and waits != pytest.approx(exact, abs=1e-3)
    assert all(w <= e * (1 + JITTER_FACTOR) + 0.05 for w, e in zip(waits, exact, strict=True))

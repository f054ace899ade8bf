import random

import httpx
import pytest

from tasks.retry import TransientHTTPError, backoff_delays, is_transient
from tasks.webhooks.guard import RefusedURL
from tasks.webhooks.steps import DeliveryRejected


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (TransientHTTPError(503), True),
        (TransientHTTPError(429, retry_after=3), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (DeliveryRejected("404"), False),
        (RefusedURL("internal"), False),
        (KeyError("bug"), False),
    ],
)
def test_only_transient_faults_are_retried(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_backoff_doubles_with_bounded_jitter() -> None:
    delays = backoff_delays(4, base=2.0, cap=100, jitter=0.5, rng=random.Random(7))

    for attempt, delay in enumerate(delays):
        assert 2.0 * 2**attempt <= delay <= 2.0 * 2**attempt * 1.5


def test_jitter_spreads_workers_apart() -> None:
    assert len({tuple(backoff_delays(4)) for _ in range(10)}) > 1

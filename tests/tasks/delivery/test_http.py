"""The webhook timeout bounds the whole attempt: connect, headers and body."""

import time

import httpx
import pytest

from tasks.delivery.http import post
from tests.subscribers import DRIPPING_BODY, DRIPPING_HEADERS, OK, raw_subscriber


def attempt(url: str, total: float = 1.0):
    client = httpx.Client(
        timeout=httpx.Timeout(total, connect=total),
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    with client:
        started = time.monotonic()
        result = post(client, url, body=b"{}", headers={}, total_timeout=total, excerpt_bytes=64)
        return result, time.monotonic() - started


@pytest.mark.parametrize("answer", [DRIPPING_HEADERS, DRIPPING_BODY], ids=["headers", "body"])
def test_a_dripping_subscriber_is_cut_off_at_the_deadline(answer: bytes) -> None:
    with raw_subscriber(answer, byte_every=0.05) as url:
        (result, error), took = attempt(url, total=1.0)

    assert not result.ok and result.status_code is None
    assert isinstance(error, httpx.TimeoutException)
    assert "within 1 s" in result.error
    assert took < 3  # bytes kept coming for 500 s


def test_a_prompt_answer_is_delivered() -> None:
    with raw_subscriber(OK) as url:
        (result, error), _ = attempt(url)

    assert result.ok and error is None and result.excerpt == "ok"

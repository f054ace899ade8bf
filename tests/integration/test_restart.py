"""A worker stopped for a release (SIGTERM, as a service manager sends it): it takes no new
runs, lets its runs finish within its grace period, and hands back what is still going then,
for another worker to take at once. No run waits for the crash automation, and no message
is delivered twice.

Real parts throughout: a PostgreSQL-backed Prefect server, `python -m worker` (signalled as
a service manager signals its main process), a subscriber on loopback.
"""

import json
import re
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import SyncPrefectClient
from pytest_httpserver import HTTPServer
from sqlmodel import Session
from werkzeug import Request, Response

from booking.db import make_engine, upgrade_schema
from booking.service import create_booking
from booking.settings import Settings
from local.stack import LocalPrefect, free_port
from tests.factories import booking_request, make_event_type, make_subscription
from tests.helpers import TEST_SETTINGS, runs_of_booking

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path, prefect_database) -> Iterator[tuple[LocalPrefect, str]]:
    database_url = f"sqlite:///{tmp_path / 'bookings.db'}"
    upgrade_schema(make_engine(database_url))
    url = prefect_database()
    if url is None:
        pytest.skip("needs a PostgreSQL-backed Prefect server (SQLite locks under this load)")
    stack = LocalPrefect(
        home=tmp_path / "prefect",
        port=free_port(),
        database_url=url,
        extra_env={
            **TEST_SETTINGS,
            "BOOKING_DATABASE_URL": database_url,
            "BOOKING_WEBHOOK_TIMEOUT_SECONDS": "30",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        },
    )
    stack.start()
    try:
        stack.deploy_all()
        yield stack, database_url
    finally:
        stack.stop(timeout=5)


@pytest.fixture
def httpserver() -> Iterator[HTTPServer]:
    """A subscriber that serves requests at once, each in its own thread."""
    server = HTTPServer(threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


class Receiver:
    """Counts each webhook-id it is sent, per booking; holds each request `hold` seconds."""

    def __init__(self, httpserver: HTTPServer, hold: float):
        self.hold = hold
        self.ids: dict[str, Counter[str]] = defaultdict(Counter)
        self.lock = threading.Lock()
        httpserver.expect_request("/hook").respond_with_handler(self.handle)
        self.url = httpserver.url_for("/hook")

    def handle(self, request: Request) -> Response:
        uid = json.loads(request.get_data())["payload"]["uid"]
        with self.lock:
            self.ids[uid][request.headers["webhook-id"]] += 1
        time.sleep(self.hold)
        return Response("ok")

    def arrived(self) -> int:
        with self.lock:
            return len(self.ids)


def book(prefect: LocalPrefect, database_url: str, url: str, count: int) -> list[str]:
    engine = make_engine(database_url)
    settings = Settings(database_url=database_url, prefect_api_url=prefect.api_url)
    from handoff.dispatch import PostCommitDispatcher

    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        make_subscription(session, url, ["BOOKING_CREATED"], event_type_id=event_type.id)
        with PostCommitDispatcher(engine=engine, settings=settings) as dispatcher:
            uids = [
                create_booking(booking_request(event_type), session=session, handoff=dispatcher).uid
                for _ in range(count)
            ]
    engine.dispose()
    return uids


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def all_completed(client: SyncPrefectClient, uids: list[str]) -> bool:
    runs = [run for uid in uids for run in runs_of_booking(client, uid)]
    return len(runs) == len(uids) and all(r.state_type.value == "COMPLETED" for r in runs)


def state_names(client: SyncPrefectClient, uids: list[str]) -> list[list[str]]:
    return [
        [state.name for state in client.read_flow_run_states(run.id)]
        for uid in uids
        for run in runs_of_booking(client, uid)
    ]


def test_a_rolling_restart_during_a_burst_finishes_every_run_once(
    stack: tuple[LocalPrefect, str], httpserver: HTTPServer
) -> None:
    prefect, database_url = stack
    receiver = Receiver(httpserver, hold=0.5)
    # A grace period no run outlasts, even beside a loaded test suite: this test is about
    # runs that finish within it (the next one hands back those that do not).
    first = prefect.start_worker("--grace", "300", name="worker-1")
    uids = book(prefect, database_url, receiver.url, 30)

    # Each worker is replaced while runs are in flight: the new one starts, the old one is
    # told to stop (SIGTERM to its main process, as Kubernetes or systemd's KillMode=mixed do).
    wait_for(lambda: receiver.arrived() >= 3, 120, "the first deliveries")
    second = prefect.start_worker("--grace", "300", name="worker-2")
    stopped_at = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(330) == 0
    wait_for(lambda: receiver.arrived() >= 15, 120, "deliveries by the second worker")
    prefect.start_worker(name="worker-3")
    second.send_signal(signal.SIGTERM)
    assert second.wait(330) == 0

    with SyncPrefectClient(prefect.api_url) as client:
        wait_for(lambda: all_completed(client, uids), 120, "every run Completed")
        finished_in = time.monotonic() - stopped_at
        histories = state_names(client, uids)
    log = prefect.log_path("worker-1").read_text()
    held = re.search(r"taking no new runs; waiting up to 300 s for (\d+) run\(s\) in flight", log)
    assert held and int(held[1]) >= 1, log[-2000:]  # it was stopped with runs in flight
    assert "every run it held has ended" in log
    # Nothing was interrupted: no run crashed, none was handed back or restarted.
    assert not [h for h in histories if {"Crashed", "AwaitingRetry"} & set(h)], histories
    assert finished_in < 300
    assert set(receiver.ids) == set(uids)
    assert all(list(ids.values()) == [1] for ids in receiver.ids.values()), receiver.ids


@pytest.mark.parametrize("how", ["grace runs out", "second signal"])
def test_a_stopping_worker_hands_back_runs_still_going(
    stack: tuple[LocalPrefect, str], httpserver: HTTPServer, how: str
) -> None:
    prefect, database_url = stack
    # Every delivery takes 8 s: the runs are still going when the worker is stopped.
    receiver = Receiver(httpserver, hold=8)
    grace = "2" if how == "grace runs out" else "600"
    first = prefect.start_worker("--grace", grace, name="worker-1")
    uids = book(prefect, database_url, receiver.url, 3)
    wait_for(lambda: receiver.arrived() == 3, 120, "all three deliveries under way")

    prefect.start_worker(name="worker-2")
    stopped_at = time.monotonic()
    first.send_signal(signal.SIGTERM)
    if how == "second signal":
        time.sleep(1)
        assert first.poll() is None  # the first signal waits for the runs
        first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
    stopped_in = time.monotonic() - stopped_at

    with SyncPrefectClient(prefect.api_url) as client:
        wait_for(lambda: all_completed(client, uids), 90, "every run Completed")
        finished_in = time.monotonic() - stopped_at
        histories = state_names(client, uids)
    assert stopped_in < 15
    # Handed back, not crashed: each went AwaitingRetry and ran again on the second worker,
    # without waiting for the crash automation (90 s of silence).
    assert all("AwaitingRetry" in h and "Crashed" not in h for h in histories), histories
    assert finished_in < 60
    assert "Handing back 3 run(s)" in prefect.log_path("worker-1").read_text()
    # A message cut off mid-request is sent again, under the same webhook-id.
    assert set(receiver.ids) == set(uids)
    assert all(len(ids) == 1 for ids in receiver.ids.values()), receiver.ids

"""A worker killed mid-delivery: its runs are marked Crashed by the heartbeat automation,
restarted by the outbox relay, and finished by a new worker. Each booking's webhook reaches
the subscriber with one `webhook-id`; nothing is stored twice.

Real parts throughout: a PostgreSQL-backed Prefect server, `python -m worker`
(it and every process it started SIGKILLed), the automations of deployments/automations.py.
"""

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prefect.client.orchestration import SyncPrefectClient
from pytest_httpserver import HTTPServer
from sqlalchemy import func
from sqlmodel import Session, col, select
from werkzeug import Request, Response

from booking.db import make_engine, upgrade_schema
from booking.models import Attendee, Booking, OutboxEvent, ScheduledTrigger, User
from booking.service import create_booking
from booking.settings import Settings
from booking.timeutil import utcnow
from booking.transitions import cancel_booking
from handoff.dispatch import PostCommitDispatcher
from handoff.relay import finish_dispatched
from local.stack import LocalPrefect, flush_redis, free_port, scale_out_env
from tests.factories import booking_request, make_event_type, make_subscription
from tests.helpers import TEST_SETTINGS, Inbox, kill_host, runs_of_booking, smtp_server

pytestmark = pytest.mark.integration
BOOKINGS = 10
CANCELLED = 2
RECOVERY_SECONDS = 300  # the promise: within five minutes


@pytest.fixture
def mailbox() -> Iterator[Inbox]:
    with smtp_server() as inbox:
        yield inbox


@pytest.fixture
def stack(tmp_path, prefect_database, mailbox: Inbox) -> Iterator[tuple[LocalPrefect, str]]:
    database_url = f"sqlite:///{tmp_path / 'bookings.db'}"
    upgrade_schema(make_engine(database_url))
    url = prefect_database()
    if url is None:
        pytest.skip("needs a PostgreSQL-backed Prefect server (SQLite locks under this load)")
    # BOOKING_TEST_SCALE_OUT_REDIS=redis://...: the same test against Prefect's scaled-out
    # server (two API workers, the services apart, messaging in that Redis).
    redis = os.environ.get("BOOKING_TEST_SCALE_OUT_REDIS")
    if redis:
        flush_redis(redis)
    stack = LocalPrefect(
        home=tmp_path / "prefect",
        port=free_port(),
        database_url=url,
        api_workers=2 if redis else 1,
        separate_services=bool(redis),
        extra_env={
            **(scale_out_env(redis) if redis else {}),
            **TEST_SETTINGS,
            "BOOKING_DATABASE_URL": database_url,
            "BOOKING_SMTP_PORT": str(mailbox.port),
            "BOOKING_WEBHOOK_TIMEOUT_SECONDS": "30",
            "BOOKING_RELAY_GRACE_SECONDS": "5",
            # The shortest window Prefect's 30 s heartbeat allows, not the default 90 s.
            "BOOKING_RUN_SILENCE_SECONDS": "45",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        },
    )
    stack.start()
    try:
        stack.deploy_all()
        yield stack, database_url
    finally:
        stack.stop(timeout=5)  # a test stack need not wind down gracefully


class SlowSubscriber:
    def __init__(self, httpserver: HTTPServer):
        self.ids: dict[str, set[str]] = defaultdict(set)
        self.first = threading.Event()
        # Set once the worker is killed: until then every delivery is held (up to 20 s, below
        # the webhook timeout), so the kill finds runs mid-delivery however slowly they start.
        self.released = threading.Event()
        httpserver.expect_request("/slow").respond_with_handler(self.handle)
        self.url = httpserver.url_for("/slow")

    def handle(self, request: Request) -> Response:
        import json

        uid = json.loads(request.get_data())["payload"]["uid"]
        self.ids[uid].add(request.headers["webhook-id"])
        self.first.set()
        self.released.wait(20)
        return Response("ok")


def test_a_killed_worker_loses_nothing(
    stack: tuple[LocalPrefect, str], httpserver: HTTPServer, mailbox: Inbox
) -> None:
    prefect, database_url = stack
    subscriber = SlowSubscriber(httpserver)
    engine = make_engine(database_url)
    worker = prefect.start_worker(name="worker-1")
    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        make_subscription(
            session,
            subscriber.url,
            ["BOOKING_CREATED", "MEETING_STARTED"],
            event_type_id=event_type.id,
        )
        settings = Settings(database_url=database_url, prefect_api_url=prefect.api_url)
        with PostCommitDispatcher(engine=engine, settings=settings) as dispatcher:
            uids = [
                create_booking(booking_request(event_type), session=session, handoff=dispatcher).uid
                for _ in range(BOOKINGS)
            ]
            # Two of them are cancelled at once: their cancellations' runs are in the kill too.
            for uid in uids[:CANCELLED]:
                cancel_booking(uid, session=session, cancelled_by="system", handoff=dispatcher)
    runs_expected = BOOKINGS + CANCELLED

    assert subscriber.first.wait(120), "no delivery started"
    # Kill mid-run: once every run has started (a run the worker took but never started is
    # the relay's Pending case, restarted on its five-minute schedule, not this test's).
    with SyncPrefectClient(prefect.api_url) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = [run for uid in uids for run in runs_of_booking(client, uid)]
            if len(runs) == runs_expected and not any(
                r.state.is_scheduled() or r.state.is_pending() for r in runs
            ):
                break
            time.sleep(0.2)
    kill_host(worker.pid)  # the worker, its forkserver and every run, at once
    worker.wait()
    subscriber.released.set()
    killed_at = time.monotonic()
    prefect.start_worker(name="worker-2")

    with SyncPrefectClient(prefect.api_url) as client:
        while time.monotonic() - killed_at < RECOVERY_SECONDS:
            runs = [run for uid in uids for run in runs_of_booking(client, uid)]
            if len(runs) == runs_expected and all(r.state_type.value == "COMPLETED" for r in runs):
                break
            time.sleep(3)
        recovered_in = time.monotonic() - killed_at
        # What the relay's next scheduled pass records (the restarted events' claims have
        # lapsed by then): every booking's work finished, Completed.
        finish_dispatched(
            engine=engine,
            client=client,
            settings=settings,
            now=utcnow() + timedelta(minutes=5),
        )
    with Session(engine) as session:
        outcomes = session.exec(select(OutboxEvent.booking_uid, OutboxEvent.outcome)).all()

    assert recovered_in < RECOVERY_SECONDS, [r.state_type for r in runs]
    assert len(outcomes) == runs_expected and {o for _, o in outcomes} == {"Completed"}
    # Each cancellation told its attendee and the host (a notice in flight at the kill may
    # be sent again: email has no idempotency key).
    with Session(engine) as session:
        told = set(
            session.exec(
                select(Attendee.email)
                .join(Booking, col(Booking.id) == Attendee.booking_id)
                .where(col(Booking.uid).in_(uids[:CANCELLED]))
            )
        )
        told |= {session.exec(select(User.email).where(User.id == event_type.owner_id)).one()}
    assert {str(m["To"]) for m in mailbox.messages} == told
    assert set(subscriber.ids) == set(uids)  # every booking's webhook arrived
    assert all(len(ids) == 1 for ids in subscriber.ids.values())  # with one webhook-id each
    with Session(engine) as session:
        triggers = session.exec(
            select(ScheduledTrigger.booking_id, func.count()).group_by(
                col(ScheduledTrigger.booking_id)
            )
        ).all()
        restarted = session.exec(select(func.sum(OutboxEvent.restarts))).one()
    assert len(triggers) == BOOKINGS and all(count == 1 for _, count in triggers)
    assert restarted >= 1  # the kill did interrupt runs
    engine.dispose()

"""End to end: prefect.yaml deployed to a real server, a real worker, a booking through
`create_booking`, and a subscriber on loopback receiving the signed webhook."""

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    FlowRunFilterTags,
)
from pytest_httpserver import HTTPServer
from sqlmodel import Session, col, select
from standardwebhooks import Webhook
from werkzeug import Request, Response

from booking.db import make_engine, upgrade_schema
from booking.enums import WorkStatus
from booking.models import OutboxEvent, WebhookRedelivery, WorkflowReminder
from booking.service import create_booking
from booking.settings import Settings
from booking.timeutil import utcnow
from booking.transitions import cancel_booking, confirm_booking
from deployments.names import DELIVER_DUE_WORK
from handoff.dispatch import PostCommitDispatcher
from handoff.runs import PLANNED_TAG
from local.stack import LocalPrefect, free_port
from tests.factories import booking_request, make_event_type, make_subscription, make_workflow
from tests.helpers import TEST_SETTINGS, Inbox, runs_of_booking, smtp_server

pytestmark = pytest.mark.integration
SECRET = "e2e-secret"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Inbox]:
    """The SMTP server the module's worker sends notices to."""
    with smtp_server() as inbox:
        yield inbox


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, prefect_database, mailbox: Inbox
) -> Iterator[tuple[LocalPrefect, str]]:
    """Its own server and worker, whose flow runs use this module's bookings database."""
    home = tmp_path_factory.mktemp("e2e")
    database_url = f"sqlite:///{home / 'bookings.db'}"
    upgrade_schema(make_engine(database_url))
    stack = LocalPrefect(
        home=home / "prefect",
        port=free_port(),
        database_url=prefect_database(),
        extra_env={
            **TEST_SETTINGS,
            "BOOKING_DATABASE_URL": database_url,
            "BOOKING_SMTP_PORT": str(mailbox.port),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "BOOKING_WEBHOOK_TIMEOUT_SECONDS": "10",  # a subscriber here may take seconds
            "BOOKING_DUE_SWEEP_SECONDS": "5",  # planned sweeps 5 s apart, not a minute
        },
    )
    stack.start()
    try:
        stack.deploy_all()
        stack.start_worker()
        yield stack, database_url
    finally:
        stack.stop(timeout=5)  # a test stack need not wind down gracefully


def wait_final(client: SyncPrefectClient, uid: str, expected: int, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of_booking(client, uid)
        if len(runs) == expected and all(r.state and r.state.is_final() for r in runs):
            return runs
        time.sleep(1)
    raise AssertionError(f"runs of {uid} not finished: {[r.state_type for r in runs]}")


@pytest.mark.parametrize(("mode", "runs"), [("bundled", 1), ("per-concern", 3)])
def test_a_booking_reaches_its_subscriber_through_deployments_and_a_worker(
    stack: tuple[LocalPrefect, str], httpserver: HTTPServer, mode: str, runs: int
) -> None:
    prefect, database_url = stack
    engine = make_engine(database_url)
    path = f"/e2e-{mode}"
    httpserver.expect_request(path, method="POST").respond_with_data("ok")
    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        make_subscription(
            session,
            httpserver.url_for(path),
            ["BOOKING_CREATED"],
            event_type_id=event_type.id,
            secret=SECRET,
        )
        settings = Settings(
            database_url=database_url, prefect_api_url=prefect.api_url, dispatch_mode=mode
        )
        with PostCommitDispatcher(engine=engine, settings=settings) as dispatcher:
            result = create_booking(
                booking_request(event_type), session=session, handoff=dispatcher
            )

    with SyncPrefectClient(prefect.api_url) as client:
        finished = wait_final(client, result.uid, runs)
        states = {client.read_flow(r.flow_id).name: r.state_type.value for r in finished}
        if mode == "bundled":
            (parent,) = finished
            children = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])
                )
            )
            states |= {client.read_flow(r.flow_id).name: r.state_type.value for r in children}

    assert states == {name: "COMPLETED" for name in states}
    assert set(states) == (
        {"booking-post-commit"}
        if mode == "bundled"
        else {
            "booking-post-commit-webhooks",
            "booking-post-commit-integrations",
            "booking-post-commit-scheduling",
        }
    )
    assert all(f"booking:{result.uid}" in r.tags for r in finished)
    (request,) = [r for r, _ in httpserver.log if r.path == path]
    body = request.get_data()
    assert json.loads(body)["triggerEvent"] == "BOOKING_CREATED"
    assert json.loads(body)["payload"]["uid"] == result.uid
    assert (
        request.headers["X-Cal-Signature-256"]
        == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    )
    Webhook(SECRET.encode()).verify(body, dict(request.headers))
    engine.dispose()


@contextlib.contextmanager
def scheduled_sweeps_paused(prefect: LocalPrefect) -> Iterator[None]:
    """No scheduled due-work sweep while a test looks for the one a settled event starts: a
    scheduled one could claim the held message first."""
    prefect.pause_deployments([DELIVER_DUE_WORK])
    try:
        yield
    finally:
        prefect.pause_deployments([DELIVER_DUE_WORK], paused=False)


def test_a_booking_is_requested_confirmed_and_cancelled_through_a_worker(
    stack: tuple[LocalPrefect, str], httpserver: HTTPServer, mailbox: Inbox
) -> None:
    prefect, database_url = stack
    engine = make_engine(database_url)

    def created_once_cancellation_waits(request: Request) -> Response:
        """The subscriber answers the CREATED only once the cancellation that follows it
        has found it still running and is held back (so the test is not a race)."""
        if json.loads(request.get_data())["triggerEvent"] == "BOOKING_CREATED":
            deadline = time.monotonic() + 8
            with Session(engine) as db:
                while time.monotonic() < deadline and not db.exec(select(WebhookRedelivery)).all():
                    time.sleep(0.1)
        return Response("ok")

    httpserver.expect_request("/life", method="POST").respond_with_handler(
        created_once_cancellation_waits
    )
    settings = Settings(database_url=database_url, prefect_api_url=prefect.api_url)
    mails_before = len(mailbox.messages)
    with (
        Session(engine, expire_on_commit=False) as session,
        PostCommitDispatcher(engine=engine, settings=settings) as dispatcher,
        SyncPrefectClient(prefect.api_url) as client,
        scheduled_sweeps_paused(prefect),
    ):
        event_type = make_event_type(session, requires_confirmation=True)
        make_subscription(
            session,
            httpserver.url_for("/life"),
            ["BOOKING_REQUESTED", "BOOKING_CREATED", "BOOKING_CANCELLED"],
            event_type_id=event_type.id,
        )
        booked = create_booking(booking_request(event_type), session=session, handoff=dispatcher)
        wait_final(client, booked.uid, 1)
        confirmed = confirm_booking(booked.uid, session=session, handoff=dispatcher)
        cancelled = cancel_booking(booked.uid, session=session, handoff=dispatcher, reason="ill")
        runs = wait_final(client, booked.uid, 3)
        events = [booked.event_id, confirmed.event_id, cancelled.event_id]
        # The ledger is true as soon as the runs end (their hook writes it a moment after
        # the final state), not at the relay's next pass, minutes later; and the CANCELLED,
        # held back behind the CREATED, goes in a sweep started when the confirmation ended.
        deadline = time.monotonic() + 30
        while True:
            session.expire_all()
            outcomes = {
                e.id: e.outcome
                for e in session.exec(select(OutboxEvent).where(col(OutboxEvent.id).in_(events)))
            }
            held = session.exec(
                select(WebhookRedelivery).where(WebhookRedelivery.booking_id == booked.booking_id)
            ).all()
            if all(outcomes.values()) and all(r.status == WorkStatus.SENT for r in held):
                break
            assert time.monotonic() < deadline, (outcomes, [r.status for r in held])
            time.sleep(0.2)
        released = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"release:{booked.uid}"]))
        )

    assert [r.state_type.value for r in runs] == ["COMPLETED"] * 3
    moves = {"created", "confirmed", "cancelled"}
    assert sorted(t for r in runs for t in r.tags if t in moves) == sorted(moves)
    assert outcomes == {event: "Completed" for event in events}
    assert len(held) == 1  # the CANCELLED waited, without holding a worker
    assert len(released) == 1
    bodies = [json.loads(r.get_data()) for r, _ in httpserver.log if r.path == "/life"]
    assert [b["triggerEvent"] for b in bodies] == [
        "BOOKING_REQUESTED",
        "BOOKING_CREATED",
        "BOOKING_CANCELLED",
    ]
    assert bodies[-1]["payload"]["cancellationReason"] == "ill"
    assert len(mailbox.messages) - mails_before == 2  # the attendee and the host
    engine.dispose()


def test_a_reminder_goes_out_in_a_sweep_planned_for_when_it_falls_due(
    stack: tuple[LocalPrefect, str],
) -> None:
    """No sweep runs on the clock between now and the reminder (the deployment's schedule is
    every ten minutes): the scheduling step plans one for when the reminder falls due."""
    prefect, database_url = stack
    engine = make_engine(database_url)
    settings = Settings(database_url=database_url, prefect_api_url=prefect.api_url)
    with (
        Session(engine, expire_on_commit=False) as session,
        PostCommitDispatcher(engine=engine, settings=settings) as dispatcher,
    ):
        event_type = make_event_type(session)
        make_workflow(session, event_type, "BEFORE_EVENT", "EMAIL_HOST", hours=1)
        start = utcnow() + timedelta(hours=1, seconds=10)  # the host's reminder due in 10 s
        booked = create_booking(
            booking_request(event_type, start=start), session=session, handoff=dispatcher
        )
        deadline = time.monotonic() + 120
        while True:
            session.expire_all()
            reminder = session.exec(
                select(WorkflowReminder).where(
                    WorkflowReminder.booking_id == booked.booking_id,
                    col(WorkflowReminder.workflow_step_id).is_not(None),
                )
            ).one_or_none()  # stored once the booking's run has run
            if reminder is not None and reminder.status != WorkStatus.PENDING:
                break
            assert time.monotonic() < deadline, "the reminder was not sent"
            time.sleep(0.5)
    with SyncPrefectClient(prefect.api_url) as client:
        # The sweep that sent it: planned, started once the reminder was due, and Completed
        # (it may still be finishing when the row reads SENT).
        deadline = time.monotonic() + 60
        while True:
            planned = [
                r
                for r in client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[PLANNED_TAG]))
                )
                if r.start_time is not None and r.start_time >= reminder.due_at
            ]
            if planned and all(r.state is not None and r.state.is_final() for r in planned):
                break
            assert time.monotonic() < deadline, [r.state_type for r in planned]
            time.sleep(0.5)

    assert reminder.status == WorkStatus.SENT
    assert reminder.sent_at is not None and reminder.sent_at >= reminder.due_at
    assert all(r.state is not None and r.state.is_completed() for r in planned)
    engine.dispose()


def every_page(read, page: int = 200) -> list:
    found, offset = [], 0
    while batch := read(limit=page, offset=offset):
        found += batch
        offset += page
    return found


def test_no_secret_or_personal_data_reaches_prefect_or_the_logs(
    stack: tuple[LocalPrefect, str], httpserver: HTTPServer
) -> None:
    """Runs after the module's other bookings: everything Prefect keeps, and the worker's
    and server's own logs, are searched for the secrets and the attendees' data."""
    from prefect.events.filters import EventFilter, EventOccurredFilter

    prefect, database_url = stack
    engine = make_engine(database_url)
    httpserver.expect_request("/pii", method="POST").respond_with_data("ok")
    private = {
        SECRET,
        "pii-booker@private.example",
        "pii-guest@private.example",
        "+4915112345678",
        "Secret Notes 4711",
        "Priv Ate-Booker",
    }
    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        make_subscription(
            session, httpserver.url_for("/pii"), ["BOOKING_CREATED"],
            event_type_id=event_type.id, secret=SECRET,
        )  # fmt: skip
        request = booking_request(
            event_type,
            guests=[{"name": "G", "email": "pii-guest@private.example", "time_zone": "UTC"}],
            responses={"notes": "Secret Notes 4711"},
        )
        request["booker"] |= {
            "name": "Priv Ate-Booker",
            "email": "pii-booker@private.example",
            "phone_number": "+4915112345678",
        }
        settings = Settings(database_url=database_url, prefect_api_url=prefect.api_url)
        with PostCommitDispatcher(engine=engine, settings=settings) as dispatcher:
            result = create_booking(request, session=session, handoff=dispatcher)

    with SyncPrefectClient(prefect.api_url) as client:
        wait_final(client, result.uid, 1)
        time.sleep(3)  # the last logs and events are sent in the background
        kept = [
            *(log.message for log in every_page(client.read_logs)),
            *(
                repr(run.parameters) + (run.state.message or "")
                for run in every_page(client.read_flow_runs)
            ),
            *(repr(run.name) + repr(run.state) for run in every_page(client.read_task_runs)),
            *(repr(artifact.data) for artifact in client.read_artifacts()),
        ]
        page = client.read_events(
            EventFilter(occurred=EventOccurredFilter(since=datetime.now(UTC) - timedelta(hours=1))),
            limit=50,
        )
        while True:
            kept += [event.model_dump_json() for event in page.events]
            if not page.next_page:
                break
            page = client.read_events_page(str(page.next_page))
    kept += [prefect.log_path(name).read_text() for name in ("worker", "server")]
    everything = "\n".join(kept)

    assert [r for r, _ in httpserver.log if r.path == "/pii"]  # the booking did run
    assert result.uid in everything  # what is searched is really there
    assert [value for value in private if value in everything] == []
    engine.dispose()

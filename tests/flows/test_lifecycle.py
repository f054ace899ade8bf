"""The rest of a booking's life through the bundled post-commit flow, called directly
against a real Prefect server, subscribers on loopback and a real SMTP server: confirm,
reject, cancel, pay, and one booking's messages arriving in commit order."""

import contextvars
import json
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import Session, col, select
from werkzeug import Request, Response

from booking.enums import WorkStatus
from booking.models import (
    NOTICE_KEY_PREFIX,
    ScheduledTrigger,
    WebhookDelivery,
    WebhookRedelivery,
    WorkflowReminder,
)
from booking.service import create_booking
from booking.timeutil import utcnow
from booking.transitions import cancel_booking, confirm_booking, record_payment, reject_booking
from flows.deliver_due_work import deliver_due_work
from flows.post_commit import booking_post_commit
from tests.factories import booking_request, make_event_type, make_subscription, make_workflow
from tests.helpers import Inbox

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
LIFE = [
    "BOOKING_CREATED",
    "BOOKING_REQUESTED",
    "BOOKING_CANCELLED",
    "BOOKING_REJECTED",
    "BOOKING_PAYMENT_INITIATED",
    "BOOKING_PAID",
    "MEETING_STARTED",
    "MEETING_ENDED",
]


def run(event_id: str | None, uid: str):
    assert event_id is not None
    return booking_post_commit(event_id, uid, return_state=True)


def bodies(httpserver: HTTPServer) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


def due_rows(db: Session, model, booking_id: int):
    db.expire_all()
    return list(db.exec(select(model).where(model.booking_id == booking_id)))


def subscribed(db: Session, httpserver: HTTPServer, **event_type):
    kind = make_event_type(db, **event_type)
    make_subscription(db, httpserver.url_for("/hook"), LIFE, event_type_id=kind.id)
    httpserver.expect_request("/hook").respond_with_data("ok")
    return kind


def test_a_confirmed_booking_gets_what_a_booking_confirmed_at_creation_gets(
    db: Session, httpserver: HTTPServer, smtp: Inbox
) -> None:
    kind = subscribed(db, httpserver, requires_confirmation=True)
    booked = create_booking(booking_request(kind), session=db)
    assert run(booked.event_id, booked.uid).is_completed()
    assert due_rows(db, ScheduledTrigger, booked.booking_id) == []

    confirmed = confirm_booking(booked.uid, session=db)
    state = run(confirmed.event_id, booked.uid)

    assert state.is_completed(), state.message
    assert [b["triggerEvent"] for b in bodies(httpserver)] == [
        "BOOKING_REQUESTED",
        "BOOKING_CREATED",
    ]
    assert bodies(httpserver)[1]["payload"]["status"] == "ACCEPTED"
    triggers = due_rows(db, ScheduledTrigger, booked.booking_id)
    assert sorted(t.trigger_event.value for t in triggers) == ["MEETING_ENDED", "MEETING_STARTED"]
    (reminder,) = due_rows(db, WorkflowReminder, booked.booking_id)
    assert reminder.is_mandatory and reminder.status == WorkStatus.PENDING
    assert smtp.messages == []


def test_a_cancellation_tells_everyone_and_cancels_what_was_planned(
    db: Session, httpserver: HTTPServer, smtp: Inbox
) -> None:
    kind = subscribed(db, httpserver)
    booked = create_booking(booking_request(kind), session=db)
    assert run(booked.event_id, booked.uid).is_completed()
    assert len(due_rows(db, ScheduledTrigger, booked.booking_id)) == 2

    cancelled = cancel_booking(
        booked.uid, session=db, reason="Kann leider nicht", cancelled_by="attendee"
    )
    state = run(cancelled.event_id, booked.uid)

    assert state.is_completed(), state.message
    last = bodies(httpserver)[-1]
    assert last["triggerEvent"] == "BOOKING_CANCELLED"
    assert last["payload"]["cancellationReason"] == "Kann leider nicht"
    assert last["payload"]["cancelledBy"] == "attendee"
    assert last["payload"]["status"] == "CANCELLED"
    notices = [r for r in due_rows(db, WorkflowReminder, booked.booking_id) if is_notice(r)]
    planned = [*due_rows(db, ScheduledTrigger, booked.booking_id)]
    planned += [r for r in due_rows(db, WorkflowReminder, booked.booking_id) if not is_notice(r)]
    assert len(planned) == 3 and all(r.status == WorkStatus.CANCELLED for r in planned)
    assert {r.skip_reason for r in planned} == {"booking cancelled by the attendee"}
    assert sorted((r.status, r.locale) for r in notices) == [
        (WorkStatus.SENT, "de"),
        (WorkStatus.SENT, "en"),
    ]
    subjects = sorted(str(m["Subject"]) for m in smtp.messages)
    assert [s.split(":")[0] for s in subjects] == ["Abgesagt", "Cancelled"]  # attendee de, host en
    attendee_mail = next(m for m in smtp.messages if str(m["Subject"]).startswith("Abgesagt"))
    assert "Grund: Kann leider nicht" in attendee_mail.get_payload()
    assert "16:00" in str(attendee_mail["Subject"])  # 15:00 UTC, in Europe/Berlin


def is_notice(row: WorkflowReminder) -> bool:
    return row.dedupe_key.startswith(NOTICE_KEY_PREFIX)


def test_a_cancellation_run_again_tells_no_one_twice(
    db: Session, httpserver: HTTPServer, smtp: Inbox
) -> None:
    """A retry of the notices step or a replay of the event sends only what was not sent:
    each message sent is recorded as it goes. Here the first run sent to the attendee only
    (the host's row is gone, as if the run died between the two)."""
    kind = subscribed(db, httpserver)
    booked = create_booking(booking_request(kind), session=db)
    assert run(booked.event_id, booked.uid).is_completed()
    cancelled = cancel_booking(booked.uid, session=db, reason="Zu spät", cancelled_by="host")
    assert run(cancelled.event_id, booked.uid).is_completed()
    assert len(smtp.messages) == 2
    host_row = next(
        r
        for r in due_rows(db, WorkflowReminder, booked.booking_id)
        if r.dedupe_key.endswith("-host")
    )
    db.delete(host_row)
    db.commit()

    again = run(cancelled.event_id, booked.uid)

    assert again.is_completed(), again.message
    subjects = [str(m["Subject"]).split(":")[0] for m in smtp.messages]
    assert subjects.count("Abgesagt") == 1 and subjects.count("Cancelled") == 2
    notices = [r for r in due_rows(db, WorkflowReminder, booked.booking_id) if is_notice(r)]
    assert len(notices) == 2 and {r.status for r in notices} == {WorkStatus.SENT}


def test_a_cancelled_workflow_step_tells_each_of_its_recipients(
    db: Session, httpserver: HTTPServer, smtp: Inbox
) -> None:
    """An EVENT_CANCELLED step that emails every attendee: each gets it, each recorded."""
    kind = subscribed(db, httpserver)
    make_workflow(db, kind, "EVENT_CANCELLED", "EMAIL_ATTENDEE", subject_template="Weg")
    guest = {"name": "Bo Guest", "email": "bo@bookers.example", "time_zone": "UTC"}
    booked = create_booking(booking_request(kind, guests=[guest]), session=db)
    cancelled = cancel_booking(booked.uid, session=db)

    assert run(cancelled.event_id, booked.uid).is_completed()

    workflow_mail = [m for m in smtp.messages if str(m["Subject"]) == "Weg"]
    assert len(workflow_mail) == 2 and len({m["To"] for m in workflow_mail}) == 2
    notices = [r for r in due_rows(db, WorkflowReminder, booked.booking_id) if is_notice(r)]
    assert len(notices) == 5  # two attendees, the host, the step's two recipients


def test_a_rejection_tells_the_subscriber_and_the_attendee_why(
    db: Session, httpserver: HTTPServer, smtp: Inbox
) -> None:
    kind = subscribed(db, httpserver, requires_confirmation=True)
    booked = create_booking(booking_request(kind), session=db)
    assert run(booked.event_id, booked.uid).is_completed()

    rejected = reject_booking(booked.uid, session=db, reason="Ausgebucht")
    state = run(rejected.event_id, booked.uid)

    assert state.is_completed(), state.message
    last = bodies(httpserver)[-1]
    assert (last["triggerEvent"], last["payload"]["rejectionReason"]) == (
        "BOOKING_REJECTED",
        "Ausgebucht",
    )
    (mail,) = smtp.messages
    assert str(mail["Subject"]).startswith("Abgelehnt") and "Ausgebucht" in mail.get_payload()
    assert due_rows(db, ScheduledTrigger, booked.booking_id) == []


def test_a_paid_booking_is_announced_then_confirmed_by_its_payment(
    db: Session, httpserver: HTTPServer, smtp: Inbox
) -> None:
    kind = subscribed(db, httpserver, price=4500, currency="eur")
    booked = create_booking(booking_request(kind), session=db)
    assert run(booked.event_id, booked.uid).is_completed()

    paid = record_payment(booked.uid, payment_id="pi_life", session=db)
    state = run(paid.event_id, booked.uid)

    assert state.is_completed(), state.message
    triggers = [b["triggerEvent"] for b in bodies(httpserver)]
    assert triggers == ["BOOKING_PAYMENT_INITIATED", "BOOKING_PAID", "BOOKING_CREATED"]
    assert bodies(httpserver)[1]["payload"]["paymentId"] == "pi_life"
    assert len(due_rows(db, ScheduledTrigger, booked.booking_id)) == 2


class FlakyFirst:
    """Answers 503 to the first two requests, 200 after; keeps what arrived, in order."""

    def __init__(self, httpserver: HTTPServer):
        self.seen: list[tuple[str, str, int]] = []  # trigger, webhook-id, status answered
        httpserver.expect_request("/hook").respond_with_handler(self.handle)
        self.url = httpserver.url_for("/hook")

    def handle(self, request: Request) -> Response:
        status = 503 if len(self.seen) < 2 else 200
        trigger = json.loads(request.get_data())["triggerEvent"]
        self.seen.append((trigger, request.headers["webhook-id"], status))
        return Response("busy" if status == 503 else "ok", status=status)


def test_a_cancellation_never_overtakes_the_creation_it_cancels(
    db: Session, httpserver: HTTPServer, configure, smtp: Inbox
) -> None:
    configure(webhook_retry_base_seconds="1.0")  # the CREATED retries for a few seconds
    subscriber = FlakyFirst(httpserver)
    kind = make_event_type(db)
    make_subscription(
        db, subscriber.url, ["BOOKING_CREATED", "BOOKING_CANCELLED"], event_type_id=kind.id
    )
    booked = create_booking(booking_request(kind), session=db)
    context = contextvars.copy_context()  # the test's Prefect server, in the thread too
    creation = threading.Thread(target=context.run, args=(run, booked.event_id, booked.uid))
    creation.start()
    time.sleep(1)
    cancelled = cancel_booking(booked.uid, session=db)
    cancellation = run(cancelled.event_id, booked.uid)  # while the CREATED is retrying
    creation.join(60)

    assert cancellation.is_completed(), cancellation.message
    sweep = deliver_due_work(now=utcnow(), return_state=True)  # the held-back CANCELLED
    assert sweep.is_completed(), sweep.message

    assert [(t, s) for t, _, s in subscriber.seen] == [
        ("BOOKING_CREATED", 503),
        ("BOOKING_CREATED", 503),
        ("BOOKING_CREATED", 200),
        ("BOOKING_CANCELLED", 200),
    ]
    ids = {
        trigger: {i for t, i, _ in subscriber.seen if t == trigger}
        for trigger, _, _ in subscriber.seen
    }
    assert all(len(one) == 1 for one in ids.values())  # each message keeps its webhook-id
    assert ids["BOOKING_CREATED"] != ids["BOOKING_CANCELLED"]


class FlakyPerMessage:
    """Answers 503 to the first `fails` requests of each webhook-id (by trigger), 200 after."""

    def __init__(self, httpserver: HTTPServer, fails: dict[str, int]):
        self.fails = fails
        self.seen: list[tuple[str, str, int]] = []  # trigger, webhook-id, status answered
        httpserver.expect_request("/hook").respond_with_handler(self.handle)
        self.url = httpserver.url_for("/hook")

    def handle(self, request: Request) -> Response:
        trigger = json.loads(request.get_data())["triggerEvent"]
        webhook_id = request.headers["webhook-id"]
        before = sum(1 for _, i, _ in self.seen if i == webhook_id)
        status = 503 if before < self.fails[trigger] else 200
        self.seen.append((trigger, webhook_id, status))
        return Response("busy" if status == 503 else "ok", status=status)

    def answers(self, trigger: str) -> list[int]:
        return [status for t, _, status in self.seen if t == trigger]


def held_cancellation(db: Session, subscriber: FlakyPerMessage):
    """A booking cancelled before its creation's run: the CANCELLED is held back for the
    CREATED, which is then delivered; returns the held CANCELLED's redelivery row."""
    kind = make_event_type(db)
    make_subscription(
        db, subscriber.url, ["BOOKING_CREATED", "BOOKING_CANCELLED"], event_type_id=kind.id
    )
    booked = create_booking(booking_request(kind), session=db)
    cancelled = cancel_booking(booked.uid, session=db)
    assert run(cancelled.event_id, booked.uid).is_completed()  # held: CREATED still to run
    assert subscriber.seen == []
    assert run(booked.event_id, booked.uid).is_completed()
    assert subscriber.answers("BOOKING_CREATED") == [503, 503, 200]
    (row,) = due_rows(db, WebhookRedelivery, booked.booking_id)
    assert (row.status, row.attempts) == (WorkStatus.PENDING, 0)
    return row


def test_a_released_message_gets_the_retries_of_a_message_never_held(
    db: Session, httpserver: HTTPServer, smtp: Inbox
) -> None:
    subscriber = FlakyPerMessage(httpserver, {"BOOKING_CREATED": 2, "BOOKING_CANCELLED": 2})
    row = held_cancellation(db, subscriber)

    assert deliver_due_work(now=utcnow(), return_state=True).is_completed()

    assert subscriber.answers("BOOKING_CANCELLED") == [503, 503, 200]  # the in-step retries
    assert len({i for t, i, _ in subscriber.seen if t == "BOOKING_CANCELLED"}) == 1
    (row,) = due_rows(db, WebhookRedelivery, row.booking_id)
    assert (row.status, row.attempts) == (WorkStatus.SENT, 1)
    log = db.exec(
        select(WebhookDelivery.attempt, WebhookDelivery.status_code)
        .where(WebhookDelivery.message_id == row.message_id)
        .order_by(col(WebhookDelivery.id))
    ).all()
    assert [tuple(entry) for entry in log] == [(1, 503), (2, 503), (3, 200)]


def test_a_released_message_that_still_fails_waits_the_first_redelivery_delay(
    db: Session, httpserver: HTTPServer, configure, smtp: Inbox
) -> None:
    configure(webhook_redelivery_delays_seconds="[300, 1800]")
    subscriber = FlakyPerMessage(httpserver, {"BOOKING_CREATED": 2, "BOOKING_CANCELLED": 99})
    row = held_cancellation(db, subscriber)
    now = utcnow()

    assert deliver_due_work(now=now, return_state=True).is_completed()

    assert subscriber.answers("BOOKING_CANCELLED") == [503] * 4  # the first try and 3 retries
    (row,) = due_rows(db, WebhookRedelivery, row.booking_id)
    assert row.status == WorkStatus.PENDING
    assert abs((row.due_at - now).total_seconds() - 300) < 1  # the first step of the backoff

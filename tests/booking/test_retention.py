"""Retention deletes what is old and finished, keeps the rest: a message's last attempt,
anything still PENDING, anything recent; a dry run deletes nothing."""

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from booking.enums import ReminderMethod, WebhookTrigger, WorkStatus
from booking.models import (
    ScheduledTrigger,
    WebhookDelivery,
    WebhookRedelivery,
    WorkflowReminder,
)
from booking.retention import prune_bookings
from booking.service import create_booking
from booking.settings import Settings
from booking.timeutil import utcnow
from tests.factories import booking_request, make_event_type, make_subscription, unique

NOW = utcnow()
OLD = NOW - timedelta(days=100)  # past every default retention (90 days)
RECENT = NOW - timedelta(days=10)


def history(session: Session) -> dict[str, set]:
    """A message with three old attempts and one recent; due rows old and recent, finished
    and pending; returns the ids each kind should keep."""
    kind = make_event_type(session)
    booked = create_booking(booking_request(kind), session=session)
    sub = make_subscription(session, "http://127.0.0.1:9/hook", ["BOOKING_CREATED"])
    booking_id = booked.booking_id
    assert booking_id is not None

    def attempt(message: str, at, attempt_no: int) -> WebhookDelivery:
        row = WebhookDelivery(
            subscription_id=sub.id, booking_uid=booked.uid,
            trigger_event=WebhookTrigger.BOOKING_CREATED, message_id=message,
            attempt=attempt_no, status_code=503, duration_ms=1, created_at=at,
        )  # fmt: skip
        session.add(row)
        return row

    def due(model, status: WorkStatus, at, **extra):
        row = model(
            dedupe_key=unique("due"), booking_id=booking_id, due_at=at, status=status, **extra
        )
        session.add(row)
        return row

    finished_long_ago = attempt("msg_a", OLD, 1), attempt("msg_a", OLD, 2)
    last_of_a = attempt("msg_a", OLD + timedelta(minutes=1), 3)  # old, but its final status
    b_old, b_recent = attempt("msg_b", OLD, 1), attempt("msg_b", RECENT, 2)
    redelivery = {"subscription_id": sub.id, "message": {}}
    trigger = {"subscription_id": sub.id, "trigger_event": WebhookTrigger.MEETING_ENDED}
    failed, pending, sent = WorkStatus.FAILED, WorkStatus.PENDING, WorkStatus.SENT
    rows = {
        "old redelivery": due(WebhookRedelivery, failed, OLD, message_id="m1", **redelivery),
        "pending redelivery": due(WebhookRedelivery, pending, OLD, message_id="m2", **redelivery),
        "recent redelivery": due(WebhookRedelivery, sent, RECENT, message_id="m3", **redelivery),
        "old reminder": due(WorkflowReminder, sent, OLD, **_reminder()),
        "pending reminder": due(WorkflowReminder, pending, OLD, **_reminder()),
        "old trigger": due(ScheduledTrigger, WorkStatus.CANCELLED, OLD, **trigger),
        "recent trigger": due(ScheduledTrigger, WorkStatus.SKIPPED, RECENT, **trigger),
    }
    session.commit()
    return {
        "attempts": {last_of_a.id, b_recent.id},
        "gone attempts": {r.id for r in (*finished_long_ago, b_old)},
        "redeliveries": {rows["pending redelivery"].id, rows["recent redelivery"].id},
        "reminders": {rows["pending reminder"].id},
        "triggers": {rows["recent trigger"].id},
    }


def _reminder() -> dict:
    return {"method": ReminderMethod.EMAIL, "recipient": "someone@example.test"}


def ids(session: Session, model) -> set:
    session.expire_all()
    return set(session.exec(select(model.id)))


def test_retention_deletes_only_what_is_old_and_finished(engine: Engine) -> None:
    settings = Settings(retention_batch_size=2)  # several batches
    with Session(engine, expire_on_commit=False) as session:
        keep = history(session)
        before = {model: ids(session, model) for model in (WebhookDelivery, WebhookRedelivery)}

        dry = prune_bookings(engine, settings, NOW, dry_run=True)
        after_dry = {model: ids(session, model) for model in (WebhookDelivery, WebhookRedelivery)}
        done = prune_bookings(engine, settings, NOW)

        assert after_dry == before  # a dry run deletes nothing
        assert dry == done == {
            "delivery attempts": 3, "redeliveries": 1, "reminders": 1, "scheduled triggers": 1,
        }  # fmt: skip
        assert ids(session, WebhookDelivery) == keep["attempts"]
        assert ids(session, WebhookRedelivery) == keep["redeliveries"]
        assert ids(session, WorkflowReminder) == keep["reminders"]
        assert ids(session, ScheduledTrigger) == keep["triggers"]
        assert prune_bookings(engine, settings, NOW) == dict.fromkeys(done, 0)  # idempotent

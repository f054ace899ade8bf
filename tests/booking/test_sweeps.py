"""What decides when the next due-work sweep is planned: the earliest pending row no sweep
holds, and one record per planned period."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from booking import sweeps
from booking.enums import ReminderMethod, WebhookTrigger, WorkStatus
from booking.models import ScheduledTrigger, WebhookRedelivery, WorkflowReminder
from booking.service import create_booking
from tests.factories import booking_request, make_event_type, make_subscription, unique

NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def due_rows(session: Session, *rows: tuple[type, datetime, dict]) -> None:
    """One row of each (kind, due time, overrides), for one booking and subscription."""
    booked = create_booking(booking_request(make_event_type(session)), session=session)
    subscription = make_subscription(session, "http://127.0.0.1:9/hook", ["MEETING_STARTED"])
    common = {"booking_id": booked.booking_id}
    for model, due_at, overrides in rows:
        key = unique("due")
        fields: dict = {
            ScheduledTrigger: {
                "subscription_id": subscription.id,
                "trigger_event": WebhookTrigger.MEETING_STARTED,
            },
            WorkflowReminder: {"method": ReminderMethod.EMAIL, "recipient": "a@hosts.example"},
            WebhookRedelivery: {
                "subscription_id": subscription.id,
                "message_id": key,
                "message": {},
            },
        }[model]
        session.add(model(dedupe_key=key, due_at=due_at, **common, **fields, **overrides))
    session.commit()


def test_the_earliest_pending_row_of_any_kind_that_no_sweep_holds(engine: Engine) -> None:
    with Session(engine) as session:
        assert sweeps.earliest_pending(session, NOW) is None
        due_rows(
            session,
            (WorkflowReminder, NOW + 9 * MINUTE, {}),
            (ScheduledTrigger, NOW + 7 * MINUTE, {}),
            (WebhookRedelivery, NOW + 8 * MINUTE, {}),
            # none of these is for a sweep to plan for
            (WorkflowReminder, NOW - MINUTE, {"status": WorkStatus.SENT}),
            (ScheduledTrigger, NOW - MINUTE, {"status": WorkStatus.CANCELLED}),
            (WebhookRedelivery, NOW - MINUTE, {"status": WorkStatus.FAILED}),
            (WorkflowReminder, NOW - MINUTE, {"claimed_until": NOW + MINUTE}),
        )
        assert sweeps.earliest_pending(session, NOW) == NOW + 7 * MINUTE
        # a claim whose lease ran out (its sweep died) is pending again
        assert sweeps.earliest_pending(session, NOW + 2 * MINUTE) == NOW - MINUTE


def test_a_time_is_rounded_up_to_a_whole_period() -> None:
    whole = datetime(2030, 5, 6, 7, 8, tzinfo=UTC)

    assert sweeps.round_up(whole, 60) == whole
    assert sweeps.round_up(whole + timedelta(microseconds=1), 60) == whole + MINUTE
    assert sweeps.round_up(NOW, 60) == whole + MINUTE
    assert sweeps.round_up(NOW, 5) == whole + timedelta(seconds=10)
    assert sweeps.round_up(NOW, 3600) == datetime(2030, 5, 6, 8, tzinfo=UTC)


def test_a_period_is_planned_once_and_found_by_what_is_due_after_it(engine: Engine) -> None:
    at = sweeps.round_up(NOW, 60)
    with Session(engine) as session:
        assert sweeps.reserve(session, at)
        session.commit()
        assert not sweeps.reserve(session, at)  # a second caller of the same period
        assert sweeps.reserve(session, at + MINUTE)
        session.commit()

        assert sweeps.planned_by(session, NOW, at + 5 * MINUTE) == at
        assert sweeps.planned_by(session, NOW, at - timedelta(seconds=1)) is None
        assert sweeps.planned_by(session, at, at + 5 * MINUTE) == at + MINUTE  # after `now`

        sweeps.forget(session, at)
        assert sweeps.prune(session, at + 2 * MINUTE) == 1
        session.commit()
        assert sweeps.planned_by(session, NOW, at + 5 * MINUTE) is None

import threading
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from booking.enums import WorkStatus
from booking.models import OutboxEvent, WebhookRedelivery
from booking.outbox import DispatchRecord, claim_pending, record_dispatches, with_held_messages
from booking.service import create_booking
from booking.timeutil import utcnow
from tests.factories import booking_request, make_event_type, make_subscription, unique

GRACE = timedelta(seconds=30)
LEASE = timedelta(minutes=2)


def committed_events(engine: Engine, count: int) -> list[str]:
    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        return [
            create_booking(booking_request(event_type), session=session).event_id
            for _ in range(count)
        ]


def test_events_younger_than_the_grace_period_are_not_claimed(engine: Engine) -> None:
    committed_events(engine, 2)

    assert claim_pending(engine, older_than=GRACE, lease=LEASE, limit=10) == []


def test_a_claimed_event_is_not_claimed_again_until_its_lease_runs_out(engine: Engine) -> None:
    ids = committed_events(engine, 2)
    later = utcnow() + GRACE * 2

    first = claim_pending(engine, older_than=GRACE, lease=LEASE, limit=10, now=later)
    during_lease = claim_pending(engine, older_than=GRACE, lease=LEASE, limit=10, now=later)
    after_lease = claim_pending(
        engine, older_than=GRACE, lease=LEASE, limit=10, now=later + LEASE * 2
    )

    assert sorted(first) == sorted(ids)
    assert during_lease == []
    assert sorted(after_lease) == sorted(ids)


def test_dispatched_events_are_never_claimed(engine: Engine) -> None:
    done, pending = committed_events(engine, 2)
    record_dispatches(engine, [DispatchRecord(done, {"post-commit": "run-1"}, 1, None)])

    claimed = claim_pending(
        engine, older_than=GRACE, lease=LEASE, limit=10, now=utcnow() + GRACE * 2
    )

    assert claimed == [pending]


def test_a_partial_dispatch_stays_pending(engine: Engine) -> None:
    (event_id,) = committed_events(engine, 1)

    record_dispatches(engine, [DispatchRecord(event_id, {"webhooks": "run-1"}, 3, "down")])

    assert claim_pending(
        engine, older_than=GRACE, lease=LEASE, limit=10, now=utcnow() + GRACE * 2
    ) == [event_id]


def test_concurrent_relays_never_claim_one_event_twice(engine: Engine) -> None:
    ids = committed_events(engine, 30)
    later = utcnow() + GRACE * 2
    claims: list[list[str]] = []
    start = threading.Barrier(4)

    def relay() -> None:
        start.wait()
        while batch := claim_pending(engine, older_than=GRACE, lease=LEASE, limit=3, now=later):
            claims.append(batch)

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    claimed = [event_id for batch in claims for event_id in batch]
    assert sorted(claimed) == sorted(ids)  # every event once, none twice


def test_every_dispatch_of_an_event_is_counted(engine: Engine) -> None:
    (event_id,) = committed_events(engine, 1)
    record = DispatchRecord(event_id, {"post-commit": "run-1"}, 1, None)

    record_dispatches(engine, [record, record])
    record_dispatches(engine, [record])

    with Session(engine) as session:
        event = session.get(OutboxEvent, event_id)
        assert event.dispatch_attempts == 3 and event.flow_run_ids == {"post-commit": "run-1"}


def test_concurrent_dispatches_of_an_event_are_all_counted(engine: Engine) -> None:
    """Acceptance saw 7 concurrent dispatches recorded as 6 (read-modify-write)."""
    (event_id,) = committed_events(engine, 1)
    record = DispatchRecord(event_id, {"post-commit": "run-1"}, 1, None)
    start = threading.Barrier(7)

    def dispatch() -> None:
        start.wait()
        record_dispatches(engine, [record])

    threads = [threading.Thread(target=dispatch) for _ in range(7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with Session(engine) as session:
        assert session.get(OutboxEvent, event_id).dispatch_attempts == 7


def test_a_message_committed_after_what_settled_and_due_now_is_one_a_sweep_can_send(
    engine: Engine,
) -> None:
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        booked = create_booking(booking_request(event_type), session=session)
        other = create_booking(booking_request(event_type), session=session)
        subscription = make_subscription(session, "http://127.0.0.1:9/hook", ["BOOKING_CREATED"])

        def held(booking_id: int | None, committed_at, due_at, status=WorkStatus.PENDING):
            assert booking_id is not None
            key = unique("message")
            session.add(
                WebhookRedelivery(
                    dedupe_key=key,
                    booking_id=booking_id,
                    subscription_id=subscription.id,
                    message_id=key,
                    message={},
                    due_at=due_at,
                    committed_at=committed_at,
                    status=status,
                )
            )
            session.commit()

        second = timedelta(seconds=1)
        held(booked.booking_id, now, now)  # held behind what settled at now - 1 s
        held(other.booking_id, now - second, now)  # committed before what settled there
        held(other.booking_id, now + second, now + timedelta(hours=1))  # not due yet
        held(other.booking_id, now + second, now, WorkStatus.SENT)  # already sent

        found = with_held_messages(
            session, {booked.uid: now - second, other.uid: now - second / 2}, now
        )
        nothing_settled = with_held_messages(session, {}, now)

    assert found == [booked.uid]
    assert nothing_settled == []

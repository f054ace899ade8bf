"""Confirm, reject, cancel and record a payment: one transaction each, typed refusals that
write nothing, and exactly one winner when two moves race on one booking."""

import threading

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from booking.enums import BookingEvent, BookingStatus, CancelledBy
from booking.errors import BookingError, InvalidBookingRequest, TransitionRefused
from booking.models import Booking, OutboxEvent, Payment
from booking.outbox import load_payload
from booking.service import create_booking
from booking.transitions import cancel_booking, confirm_booking, record_payment, reject_booking
from tests.factories import RecordingHandoff, booking_request, make_event_type


def booked(session: Session, **event_type: object) -> str:
    kind = make_event_type(session, **event_type)
    return create_booking(booking_request(kind), session=session).uid


def pending(session: Session) -> str:
    return booked(session, requires_confirmation=True)


def events_of(session: Session, uid: str) -> list[OutboxEvent]:
    return list(
        session.exec(
            select(OutboxEvent)
            .where(OutboxEvent.booking_uid == uid)
            .order_by(col(OutboxEvent.created_at))
        )
    )


def status_of(session: Session, uid: str) -> BookingStatus:
    session.expire_all()
    return session.exec(select(Booking.status).where(Booking.uid == uid)).one()


def test_confirming_a_pending_booking_commits_the_status_and_its_event_together(
    session: Session,
) -> None:
    uid = pending(session)
    handoff = RecordingHandoff()

    result = confirm_booking(uid, session=session, handoff=handoff)

    assert result.status == BookingStatus.ACCEPTED and result.dispatch == "handed-off"
    assert status_of(session, uid) == BookingStatus.ACCEPTED
    created, confirmed = events_of(session, uid)
    assert handoff.submitted == [confirmed.id] == [result.event_id]
    payload = load_payload(session, confirmed.id)
    assert payload.event == BookingEvent.CONFIRMED and payload.confirmed
    assert payload.plans_confirmed_work and not payload.confirmed_by_default
    assert created.created_at < confirmed.created_at


def test_rejecting_and_cancelling_record_their_reason_and_who(session: Session) -> None:
    rejected, cancelled = pending(session), booked(session)

    reject_booking(rejected, session=session, reason="Fully booked that week")
    cancel_booking(
        cancelled, session=session, reason="Travel plans", cancelled_by=CancelledBy.ATTENDEE
    )

    rejection = load_payload(session, events_of(session, rejected)[-1].id)
    cancellation = load_payload(session, events_of(session, cancelled)[-1].id)
    assert (rejection.event, rejection.status) == (BookingEvent.REJECTED, BookingStatus.REJECTED)
    assert rejection.rejection_reason == "Fully booked that week"
    assert (cancellation.event, cancellation.status) == (
        BookingEvent.CANCELLED,
        BookingStatus.CANCELLED,
    )
    assert (cancellation.cancellation_reason, cancellation.cancelled_by) == (
        "Travel plans",
        "attendee",
    )


@pytest.mark.parametrize(
    ("setup", "move", "status"),
    [
        ("unknown", confirm_booking, None),
        ("cancelled", confirm_booking, BookingStatus.CANCELLED),
        ("cancelled", cancel_booking, BookingStatus.CANCELLED),
        ("accepted", reject_booking, BookingStatus.ACCEPTED),
        ("accepted", confirm_booking, BookingStatus.ACCEPTED),
        ("rejected", cancel_booking, BookingStatus.REJECTED),
    ],
)
def test_a_move_the_booking_cannot_make_is_refused_and_writes_nothing(
    session: Session, setup: str, move, status: BookingStatus | None
) -> None:
    uid = "no-such-booking"
    if setup == "cancelled":
        uid = booked(session)
        cancel_booking(uid, session=session)
    elif setup == "accepted":
        uid = booked(session)
    elif setup == "rejected":
        uid = pending(session)
        reject_booking(uid, session=session)
    before = events_of(session, uid)

    with pytest.raises(TransitionRefused) as refused:
        move(uid, session=session, handoff=RecordingHandoff())

    assert isinstance(refused.value, BookingError)
    assert refused.value.status == status and uid[:20] in str(refused.value)
    assert move.__name__.split("_")[0] in str(refused.value)  # names the move
    assert events_of(session, uid) == before
    if status is not None:
        assert status_of(session, uid) == status


def test_bad_input_to_a_move_is_one_clear_error(session: Session) -> None:
    uid = booked(session)

    with pytest.raises(InvalidBookingRequest, match="cancelled_by"):
        cancel_booking(uid, session=session, cancelled_by="the cat")
    with pytest.raises(InvalidBookingRequest, match="reason"):
        cancel_booking(uid, session=session, reason="x" * 501)

    assert status_of(session, uid) == BookingStatus.ACCEPTED
    assert len(events_of(session, uid)) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("moves", [("confirm", "reject"), ("cancel", "cancel")])
def test_two_moves_racing_on_one_booking_have_exactly_one_winner(
    engine: Engine, moves: tuple[str, str]
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        uids = [pending(session) for _ in range(5)]
    outcomes: dict[str, list[str]] = {uid: [] for uid in uids}
    start = threading.Barrier(2 * len(uids))
    do = {"confirm": confirm_booking, "reject": reject_booking, "cancel": cancel_booking}
    ends = {
        "confirm": BookingStatus.ACCEPTED,
        "reject": BookingStatus.REJECTED,
        "cancel": BookingStatus.CANCELLED,
    }

    def move(uid: str, name: str) -> None:
        with Session(engine, expire_on_commit=False) as session:
            start.wait()
            try:
                do[name](uid, session=session)
                outcomes[uid].append(name)
            except TransitionRefused:
                outcomes[uid].append("refused")

    threads = [threading.Thread(target=move, args=(uid, name)) for uid in uids for name in moves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    with Session(engine) as session:
        for uid, seen in outcomes.items():
            assert len(seen) == 2 and seen.count("refused") == 1, seen
            (winner,) = [name for name in seen if name != "refused"]
            assert status_of(session, uid) == ends[winner]
            assert len(events_of(session, uid)) == 2  # the creation and the winner's


def test_a_payment_confirms_a_paid_booking_once_per_payment_id(session: Session) -> None:
    uid = booked(session, price=4500, currency="eur")
    assert status_of(session, uid) == BookingStatus.PENDING
    first = load_payload(session, events_of(session, uid)[0].id)
    assert first.needs_payment

    paid = record_payment(uid, payment_id="pi_123", session=session)
    again = record_payment(uid, payment_id="pi_123", session=session)

    assert (paid.status, paid.event) == (BookingStatus.ACCEPTED, BookingEvent.PAID)
    assert again.dispatch == "already-recorded" and again.event_id is None
    assert len(events_of(session, uid)) == 2
    payload = load_payload(session, paid.event_id)
    assert payload.paid and payload.payment and payload.payment.amount == 4500
    assert session.exec(select(Payment.external_id)).all() == ["pi_123"]
    with pytest.raises(TransitionRefused, match="paid already|ACCEPTED"):
        record_payment(uid, payment_id="pi_456", session=session)
    with pytest.raises(TransitionRefused, match="another booking"):
        record_payment(booked(session, price=100), payment_id="pi_123", session=session)


def test_a_payment_of_a_booking_the_host_confirms_leaves_it_pending(session: Session) -> None:
    uid = booked(session, price=4500, requires_confirmation=True)

    result = record_payment(uid, payment_id="pi_789", session=session)

    assert result.status == BookingStatus.PENDING
    assert confirm_booking(uid, session=session).status == BookingStatus.ACCEPTED


def test_a_free_booking_takes_no_payment(session: Session) -> None:
    uid = booked(session)

    with pytest.raises(TransitionRefused, match="free"):
        record_payment(uid, payment_id="pi_1", session=session)
    assert session.exec(select(Payment)).all() == []

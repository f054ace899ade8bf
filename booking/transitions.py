"""The rest of a booking's life: confirm, reject, cancel, and record a payment.

Each is one transaction, as a creation is: the booking's status changes and an outbox event
holding a snapshot of the booking as it now is is written with it; after commit the event is
handed off, and the relay covers a hand-off that did not get through. The change is one
conditional UPDATE (`... WHERE uid = ? AND status IN (...)`), so of two moves racing on one
booking exactly one wins; the other, like any move the booking cannot make, raises
`TransitionRefused` and writes nothing.

    PENDING  --confirm-->  ACCEPTED        PENDING --reject--> REJECTED
    PENDING or ACCEPTED  --cancel-->  CANCELLED
    PENDING (a paid event type) --record_payment--> ACCEPTED, or PENDING when the host
    still confirms it
"""

import logging
from datetime import datetime
from functools import lru_cache

from pydantic import BaseModel
from sqlalchemy import Update, bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from booking import outbox
from booking.enums import BookingEvent, BookingStatus, CancelledBy
from booking.errors import InvalidBookingRequest, TransitionRefused
from booking.models import Booking, EventType, OutboxEvent, Payment
from booking.models.types import table
from booking.payload import SCHEMA_VERSION, PaymentSnapshot
from booking.service import PostCommitHandoff, dispatch_mode_of, hand_off
from booking.snapshot import build_payload
from booking.timeutil import iso_utc, utcnow

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 500
MAX_PAYMENT_ID_CHARS = 200


class TransitionResult(BaseModel):
    uid: str
    status: BookingStatus
    event: BookingEvent
    event_id: str | None  # None: a payment recorded before; nothing new was written
    dispatch: str  # "handed-off", "pending-relay", or "already-recorded"


def confirm_booking(
    uid: str, *, session: Session, handoff: PostCommitHandoff | None = None
) -> TransitionResult:
    """The host accepts a PENDING booking: it gets what a booking confirmed at creation gets."""
    return _move(
        session,
        handoff,
        uid,
        move="confirm",
        event=BookingEvent.CONFIRMED,
        allowed=(BookingStatus.PENDING,),
        status=BookingStatus.ACCEPTED,
    )


def reject_booking(
    uid: str,
    *,
    session: Session,
    reason: str | None = None,
    handoff: PostCommitHandoff | None = None,
) -> TransitionResult:
    """The host declines a PENDING booking."""
    return _move(
        session,
        handoff,
        uid,
        move="reject",
        event=BookingEvent.REJECTED,
        allowed=(BookingStatus.PENDING,),
        status=BookingStatus.REJECTED,
        rejection_reason=_reason(reason),
    )


def cancel_booking(
    uid: str,
    *,
    session: Session,
    reason: str | None = None,
    cancelled_by: CancelledBy | str = CancelledBy.HOST,
    handoff: PostCommitHandoff | None = None,
) -> TransitionResult:
    """Cancel a PENDING or ACCEPTED booking; its pending reminders and triggers are
    cancelled by its post-commit run."""
    try:
        by = CancelledBy(cancelled_by)
    except ValueError:
        raise InvalidBookingRequest(
            {"cancelled_by": f"one of {', '.join(c.value for c in CancelledBy)}"}
        ) from None
    return _move(
        session,
        handoff,
        uid,
        move="cancel",
        event=BookingEvent.CANCELLED,
        allowed=(BookingStatus.PENDING, BookingStatus.ACCEPTED),
        status=BookingStatus.CANCELLED,
        cancellation_reason=_reason(reason),
        cancelled_by=by.value,
    )


def record_payment(
    uid: str,
    *,
    payment_id: str,
    session: Session,
    handoff: PostCommitHandoff | None = None,
) -> TransitionResult:
    """Record the payment of a PENDING booking of a paid event type, once per payment id.

    The booking becomes ACCEPTED (or stays PENDING when its event type also needs the host's
    confirmation). Recording the same payment again writes nothing and says so.
    """
    if not payment_id or len(payment_id) > MAX_PAYMENT_ID_CHARS or "\0" in payment_id:
        raise InvalidBookingRequest({"payment_id": f"1 to {MAX_PAYMENT_ID_CHARS} characters"})
    if (recorded := _recorded_payment(session, uid, payment_id)) is not None:
        return recorded
    row = session.exec(
        select(Booking, EventType)
        .join(EventType, col(EventType.id) == Booking.event_type_id)
        .where(Booking.uid == uid)
    ).first()
    if row is None:
        session.rollback()
        raise TransitionRefused(uid, "record a payment for", None)
    booking, event_type = row
    if event_type.price <= 0:
        session.rollback()
        raise TransitionRefused(
            uid, "record a payment for", booking.status, "its event type is free"
        )
    status = BookingStatus.PENDING if event_type.requires_confirmation else BookingStatus.ACCEPTED
    payment = Payment(
        external_id=payment_id,
        booking_id=booking.id,  # type: ignore[arg-type]
        amount=event_type.price,
        currency=event_type.currency,
    )
    try:
        return _move(
            session,
            handoff,
            uid,
            move="record a payment for",
            event=BookingEvent.PAID,
            allowed=(BookingStatus.PENDING,),
            status=status,
            unpaid_only=True,
            payment=payment,
            paid=True,
        )
    except IntegrityError:  # the same payment, recorded by a concurrent call
        if (recorded := _recorded_payment(session, uid, payment_id)) is not None:
            return recorded
        raise


def _recorded_payment(session: Session, uid: str, payment_id: str) -> TransitionResult | None:
    found = session.exec(
        select(Booking)
        .join(Payment, col(Payment.booking_id) == Booking.id)
        .where(Payment.external_id == payment_id)
    ).first()
    session.rollback()
    if found is None:
        return None
    if found.uid != uid:
        raise TransitionRefused(
            uid, "record a payment for", None, "this payment belongs to another booking"
        )
    return TransitionResult(
        uid=uid,
        status=found.status,
        event=BookingEvent.PAID,
        event_id=None,
        dispatch="already-recorded",
    )


def _reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    if len(reason) > MAX_REASON_CHARS or "\0" in reason:
        raise InvalidBookingRequest(
            {"reason": f"at most {MAX_REASON_CHARS} characters, no NUL character"}
        )
    return reason or None


def _move(
    session: Session,
    handoff: PostCommitHandoff | None,
    uid: str,
    *,
    move: str,
    event: BookingEvent,
    allowed: tuple[BookingStatus, ...],
    status: BookingStatus,
    unpaid_only: bool = False,
    payment: Payment | None = None,
    **values: object,
) -> TransitionResult:
    """One transaction: the conditional status change, the payment if any, the outbox event."""
    mode = dispatch_mode_of(handoff)
    now = utcnow()
    try:
        moved = session.execute(
            _status_change(tuple(sorted(values)), unpaid_only),
            {
                "the_uid": uid,
                "allowed": list(allowed),
                **{f"new_{name}": value for name, value in values.items()},
                "new_status": status,
                "new_updated_at": now,
            },
        ).one_or_none()
        if moved is None:
            current = session.exec(select(Booking.status).where(Booking.uid == uid)).first()
            detail = "it is paid already" if unpaid_only and current in allowed else None
            raise TransitionRefused(uid, move, current, detail)
        if payment is not None:
            session.add(payment)
            session.flush()
        booking_id, previous = moved
        payload = _snapshot(session, previous, booking_id, event, status, values, payment, now)
        outbox.add_event_data(session, payload, dispatch_mode=mode, committed_at=now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    event_id = payload["event_id"]
    logger.info("booking %s %s (status %s, event %s)", uid, event.value.lower(), status, event_id)
    return TransitionResult(
        uid=uid,
        status=status,
        event=event,
        event_id=event_id,
        dispatch=hand_off(handoff, event_id, uid, event),
    )


@lru_cache(maxsize=16)
def _status_change(columns: tuple[str, ...], unpaid_only: bool) -> Update:
    """`UPDATE booking SET status, updated_at, <columns> WHERE uid = :the_uid AND status IN
    :allowed [AND NOT paid] RETURNING id, <the payload of its latest outbox event>`, built
    once per shape: the booker's path pays for the statement's execution, not its
    construction, and one round trip both moves the booking and reads its last snapshot."""
    booking = table(Booking)
    events = table(OutboxEvent)
    latest = (
        select(events.c.payload)
        .where(events.c.booking_uid == bindparam("the_uid"))
        .order_by(events.c.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    condition = [
        booking.c.uid == bindparam("the_uid"),
        booking.c.status.in_(bindparam("allowed", expanding=True)),
    ]
    if unpaid_only:
        condition.append(booking.c.paid.is_(False))
    names = ("status", "updated_at", *columns)
    return (
        booking.update()
        .where(*condition)
        .values({name: bindparam(f"new_{name}") for name in names})
        .returning(booking.c.id, latest)
    )


def _snapshot(
    session: Session,
    previous: dict | None,
    booking_id: int,
    event: BookingEvent,
    status: BookingStatus,
    values: dict[str, object],
    payment: Payment | None,
    now: datetime,
) -> dict:
    """The event's payload in its JSON form: the booking's last snapshot (`previous`, what it
    was when booked: people, times, event type, read by the status change) with what this
    move changed, instead of rebuilding the snapshot from six tables; a booking with no
    event yet is built anew."""
    changes = {
        "schema_version": SCHEMA_VERSION,
        "event_id": outbox.new_event_id(),
        "event": event.value,
        "status": status.value,
        "committed_at": iso_utc(now),
        "payment": PaymentSnapshot(
            id=payment.external_id, amount=payment.amount, currency=payment.currency
        ).model_dump(mode="json")
        if payment
        else None,
        **values,
    }
    if previous is not None:
        return {**previous, **changes}
    booking = session.get(Booking, booking_id, populate_existing=True)
    assert booking is not None
    built = build_payload(session, booking, event_id=changes["event_id"], event=event)
    return {**built.model_dump(mode="json"), **changes}

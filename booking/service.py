"""`create_booking`: validate, commit the booking with its outbox event, then hand off.

The booker's response costs one database transaction. Side effects are never run here: the
outbox event committed with the booking is handed to a dispatcher that starts the Prefect runs
in the background, and the outbox relay covers any hand-off that did not get through.
"""

import logging
import secrets
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError
from sqlmodel import Session, select

from booking import outbox
from booking.enums import BookingStatus
from booking.errors import (
    InvalidBookingRequest,
    RescheduleTargetCancelled,
    RescheduleTargetNotFound,
    UnknownEventType,
)
from booking.models import Attendee, Booking, BookingHost, EventType, EventTypeHost, User
from booking.schemas import BookingRequest, BookingResult
from booking.settings import DispatchMode, get_settings
from booking.snapshot import build_payload, is_confirmed_by_default
from booking.timeutil import utcnow

logger = logging.getLogger(__name__)

CLOSED_STATUSES = (BookingStatus.CANCELLED, BookingStatus.REJECTED)


class PostCommitHandoff(Protocol):
    """Receives the id of a committed outbox event; must return without blocking."""

    dispatch_mode: DispatchMode

    def submit(self, event_id: str) -> object: ...


def parse_request(request: BookingRequest | Mapping[str, Any]) -> BookingRequest:
    """Validate a request, turning pydantic's report into one error that names the fields.

    The error never echoes the input values: they are attendees' personal data.
    """
    if isinstance(request, BookingRequest):
        return request
    try:
        return BookingRequest.model_validate(request)
    except ValidationError as exc:
        problems = {
            ".".join(str(part) for part in error["loc"]) or "request": error["msg"]
            for error in exc.errors(include_input=False, include_url=False)
        }
        raise InvalidBookingRequest(problems) from None


def create_booking(
    request: BookingRequest | Mapping[str, Any],
    *,
    session: Session,
    handoff: PostCommitHandoff | None = None,
    dispatch_mode: DispatchMode | None = None,
) -> BookingResult:
    """Book (or reschedule) in one transaction and hand the post-commit work off.

    Bad input raises a `BookingError` subclass and writes nothing. A dry run validates and
    answers as a real booking would, but writes and dispatches nothing. The session's
    transaction is committed here; pass a session with no other pending work.
    """
    req = parse_request(request)
    event_type = session.get(EventType, req.event_type_id)
    if event_type is None:
        raise UnknownEventType(req.event_type_id)
    original = _reschedule_target(session, req.reschedule_uid)
    hosts = _hosts_of(session, event_type)
    confirmed = is_confirmed_by_default(event_type)
    status = BookingStatus.ACCEPTED if confirmed else BookingStatus.PENDING
    uid = secrets.token_hex(10)
    mode = handoff.dispatch_mode if handoff else (dispatch_mode or get_settings().dispatch_mode)

    if req.dry_run:
        session.rollback()
        return BookingResult(
            uid=uid,
            booking_id=None,
            status=status,
            confirmed_by_default=confirmed,
            dry_run=True,
            event_id=None,
            rescheduled_from=original.uid if original else None,
            dispatch="skipped-dry-run",
        )

    try:
        booking = _write_booking(session, req, event_type, hosts, uid, status, original)
        payload = build_payload(session, booking, event_id=outbox.new_event_id())
        outbox.add_event(session, payload, dispatch_mode=mode)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    logger.info(
        "booking %s committed (status %s, event %s%s)",
        uid,
        status,
        payload.event_id,
        f", reschedules {original.uid}" if original else "",
    )

    handed_off = False
    if handoff is not None:
        # Handing off only queues the event id; a failure here is covered by the relay.
        try:
            handoff.submit(payload.event_id)
            handed_off = True
        except Exception:
            logger.exception(
                "hand-off of event %s failed; the relay will dispatch it", payload.event_id
            )
    return BookingResult(
        uid=uid,
        booking_id=booking.id,
        status=status,
        confirmed_by_default=confirmed,
        dry_run=False,
        event_id=payload.event_id,
        rescheduled_from=original.uid if original else None,
        dispatch="handed-off" if handed_off else "pending-relay",
    )


def _reschedule_target(session: Session, uid: str | None) -> Booking | None:
    if uid is None:
        return None
    # Locked on PostgreSQL so two concurrent reschedules of one booking serialise.
    original = session.exec(select(Booking).where(Booking.uid == uid).with_for_update()).first()
    if original is None:
        raise RescheduleTargetNotFound(uid)
    if original.status in CLOSED_STATUSES:
        raise RescheduleTargetCancelled(uid)
    return original


def _hosts_of(session: Session, event_type: EventType) -> list[User]:
    """The organizer first, then the other hosts of a team event type."""
    host_ids = list(
        session.exec(
            select(EventTypeHost.user_id)
            .where(EventTypeHost.event_type_id == event_type.id)
            .order_by(EventTypeHost.id)  # type: ignore[arg-type]
        )
    )
    if event_type.owner_id is not None and event_type.owner_id not in host_ids:
        host_ids.insert(0, event_type.owner_id)
    users = {u.id: u for u in session.exec(select(User).where(User.id.in_(host_ids)))}  # type: ignore[union-attr]
    hosts = [users[i] for i in host_ids if i in users]
    if not hosts:
        raise UnknownEventType(event_type.id or 0)
    return hosts


def _write_booking(
    session: Session,
    req: BookingRequest,
    event_type: EventType,
    hosts: list[User],
    uid: str,
    status: BookingStatus,
    original: Booking | None,
) -> Booking:
    organizer = hosts[0]
    booking = Booking(
        uid=uid,
        event_type_id=event_type.id,
        user_id=organizer.id,
        team_id=event_type.team_id,
        title=f"{event_type.title} between {organizer.name} and {req.booker.name}",
        start_time=req.start,
        end_time=req.end,
        status=status,
        location=req.location or event_type.location,
        booking_metadata=dict(req.metadata),
        responses=dict(req.responses),
        from_reschedule=original.uid if original else None,
        tracking_id=req.tracking_id,
    )
    session.add(booking)
    session.flush()
    for host in hosts:
        session.add(BookingHost(booking_id=booking.id, user_id=host.id))
    for person in (req.booker, *req.guests):
        session.add(
            Attendee(
                booking_id=booking.id,
                name=person.name,
                email=str(person.email),
                time_zone=person.time_zone,
                locale=person.locale,
                phone_number=person.phone_number,
            )
        )
    if original is not None:
        original.status = BookingStatus.CANCELLED
        original.rescheduled = True
        original.cancellation_reason = req.reschedule_reason
        original.updated_at = utcnow()
        session.add(original)
    session.flush()
    return booking

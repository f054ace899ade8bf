"""`create_booking`: validate, commit the booking with its outbox event, then hand off.

The booker's response costs one database transaction. Side effects are never run here: the
outbox event committed with the booking is handed to a dispatcher that starts the Prefect runs
in the background, and the outbox relay covers any hand-off that did not get through.
"""

import logging
import secrets
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import ValidationError
from sqlmodel import Session, col, or_, select

from booking import outbox
from booking.enums import BookingEvent, BookingStatus
from booking.errors import (
    InvalidBookingRequest,
    RescheduleTargetCancelled,
    RescheduleTargetNotFound,
    UnknownEventType,
)
from booking.models import (
    Attendee,
    Booking,
    BookingHost,
    EventType,
    EventTypeHost,
    Team,
    User,
)
from booking.models.types import table
from booking.payload import AttendeeSnapshot
from booking.schemas import BookingRequest, BookingResult
from booking.settings import DispatchMode, get_settings
from booking.snapshot import BookingRecord, is_confirmed_by_default, snapshot_of
from booking.timeutil import utcnow

logger = logging.getLogger(__name__)

CLOSED_STATUSES = (BookingStatus.CANCELLED, BookingStatus.REJECTED)


class PostCommitHandoff(Protocol):
    """Receives the id of a committed outbox event; must return without blocking."""

    dispatch_mode: DispatchMode

    def submit(self, event_id: str, *, booking_uid: str, event: str = "CREATED") -> object: ...


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
    event_type, hosts, team_name = _event_type_and_hosts(session, req.event_type_id)
    original = _reschedule_target(session, req.reschedule_uid)
    confirmed = is_confirmed_by_default(event_type)
    status = BookingStatus.ACCEPTED if confirmed else BookingStatus.PENDING
    uid = secrets.token_hex(10)
    mode = dispatch_mode_of(handoff, dispatch_mode)

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
        booking, attendees = _write_booking(session, req, event_type, hosts, uid, status, original)
        payload = snapshot_of(
            booking,
            event_type=event_type,
            hosts=hosts,
            attendees=attendees,
            original=original,
            event_id=outbox.new_event_id(),
            team_name=team_name,
            committed_at=booking.created_at,
        )
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

    dispatch = hand_off(handoff, payload.event_id, uid)
    return BookingResult(
        uid=uid,
        booking_id=booking.id,
        status=status,
        confirmed_by_default=confirmed,
        dry_run=False,
        event_id=payload.event_id,
        rescheduled_from=original.uid if original else None,
        dispatch=dispatch,
    )


def dispatch_mode_of(
    handoff: PostCommitHandoff | None, dispatch_mode: DispatchMode | None = None
) -> DispatchMode:
    """The arrangement an event is committed with: the handoff's, else the settings'."""
    return handoff.dispatch_mode if handoff else (dispatch_mode or get_settings().dispatch_mode)


def hand_off(
    handoff: PostCommitHandoff | None,
    event_id: str,
    booking_uid: str,
    event: BookingEvent = BookingEvent.CREATED,
) -> Literal["handed-off", "pending-relay"]:
    """Queue a committed event's dispatch; without a handoff, or if it fails, the relay
    dispatches it."""
    if handoff is None:
        return "pending-relay"
    # Handing off only queues the event id; a failure here is covered by the relay.
    try:
        handoff.submit(event_id, booking_uid=booking_uid, event=event.value)
    except Exception:
        logger.exception("hand-off of event %s failed; the relay will dispatch it", event_id)
        return "pending-relay"
    return "handed-off"


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


def _event_type_and_hosts(
    session: Session, event_type_id: int
) -> tuple[EventType, list[User], str | None]:
    """The event type, its hosts (organizer first) and its team's name, in one query."""
    rows = session.exec(
        select(EventType, User, Team.name)
        .outerjoin(Team, col(Team.id) == EventType.team_id)
        .outerjoin(EventTypeHost, col(EventTypeHost.event_type_id) == EventType.id)
        .outerjoin(
            User,
            or_(col(User.id) == EventTypeHost.user_id, col(User.id) == EventType.owner_id),
        )
        .where(EventType.id == event_type_id)
        .order_by(col(EventTypeHost.id))
    ).all()
    if not rows:
        raise UnknownEventType(event_type_id)
    event_type, team_name = rows[0][0], rows[0][2]
    found = {user.id: user for _, user, _ in rows if user is not None}
    order = [event_type.owner_id, *(user.id for _, user, _ in rows if user is not None)]
    hosts = [found[i] for i in dict.fromkeys(order) if i in found]
    if not hosts:
        raise UnknownEventType(event_type_id)
    return event_type, hosts, team_name


def _write_booking(
    session: Session,
    req: BookingRequest,
    event_type: EventType,
    hosts: list[User],
    uid: str,
    status: BookingStatus,
    original: Booking | None,
) -> tuple[BookingRecord, list[AttendeeSnapshot]]:
    """Insert the booking, its attendees and co-hosts, and cancel the original.

    Plain INSERTs on the tables, not the ORM's unit of work: this is what the booker waits
    for, and the rows are known in full here.
    """
    organizer = hosts[0]
    now = utcnow()
    row = {
        "uid": uid,
        "event_type_id": event_type.id,
        "user_id": organizer.id,
        "team_id": event_type.team_id,
        "title": f"{event_type.title} between {organizer.name} and {req.booker.name}",
        "description": None,
        "start_time": req.start,
        "end_time": req.end,
        "status": status,
        "location": req.location or event_type.location,
        "metadata": dict(req.metadata),
        "responses": dict(req.responses),
        "from_reschedule": original.uid if original else None,
        "rescheduled": False,
        "cancellation_reason": None,
        "tracking_id": req.tracking_id,
        "no_show_host": None,
        "created_at": now,
        "updated_at": now,
    }
    booking_table, attendee_table = table(Booking), table(Attendee)
    booking_id = session.execute(
        booking_table.insert().returning(booking_table.c.id), [row]
    ).scalar_one()
    people = (req.booker, *req.guests)
    attendees = [
        AttendeeSnapshot(
            name=person.name,
            email=str(person.email),
            time_zone=person.time_zone,
            locale=person.locale,
            phone_number=person.phone_number,
        )
        for person in people
    ]
    session.execute(
        attendee_table.insert(),
        [{**a.model_dump(), "booking_id": booking_id, "no_show": False} for a in attendees],
    )
    if co_hosts := hosts[1:]:  # the organizer is the booking's own user_id
        session.execute(
            table(BookingHost).insert(),
            [{"booking_id": booking_id, "user_id": h.id} for h in co_hosts],
        )
    if original is not None:
        original.status = BookingStatus.CANCELLED
        original.rescheduled = True
        original.cancellation_reason = req.reschedule_reason
        original.updated_at = now
    record = BookingRecord(
        id=booking_id,
        uid=uid,
        title=row["title"],
        description=None,
        start_time=req.start,
        end_time=req.end,
        created_at=now,
        status=status,
        location=row["location"],
        metadata=row["metadata"],
        responses=row["responses"],
        tracking_id=req.tracking_id,
        team_id=event_type.team_id,
    )
    return record, attendees

"""Build the post-commit payload: from the values being written, or from the database rows.

`create_booking` builds it from what it writes, inside the booking transaction (the snapshot
the outbox keeps); periodic flows load the current rows, so they act on what the booking is
now.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from booking.enums import BookingEvent, BookingStatus
from booking.models import Attendee, Booking, BookingHost, EventType, Team, User
from booking.payload import (
    AttendeeSnapshot,
    EventTypeSnapshot,
    HostSnapshot,
    PaymentSnapshot,
    PostCommitPayload,
    RescheduleSnapshot,
)


@dataclass(frozen=True)
class BookingRecord:
    """The booking's own columns that the payload carries."""

    id: int
    uid: str
    title: str
    description: str | None
    start_time: datetime
    end_time: datetime
    created_at: datetime
    status: BookingStatus
    location: str | None
    metadata: dict[str, Any]
    responses: dict[str, Any]
    tracking_id: str | None
    team_id: int | None
    paid: bool = False
    cancellation_reason: str | None = None
    cancelled_by: str | None = None
    rejection_reason: str | None = None

    @classmethod
    def of(cls, booking: Booking) -> "BookingRecord":
        return cls(
            id=booking.id,  # type: ignore[arg-type]
            uid=booking.uid,
            title=booking.title,
            description=booking.description,
            start_time=booking.start_time,
            end_time=booking.end_time,
            created_at=booking.created_at,
            status=booking.status,
            location=booking.location,
            metadata=booking.booking_metadata,
            responses=booking.responses,
            tracking_id=booking.tracking_id,
            team_id=booking.team_id,
            paid=booking.paid,
            cancellation_reason=booking.cancellation_reason,
            cancelled_by=booking.cancelled_by,
            rejection_reason=booking.rejection_reason,
        )


def is_confirmed_by_default(event_type: EventType) -> bool:
    return not event_type.requires_confirmation and event_type.price == 0


def host_snapshot(user: User) -> HostSnapshot:
    return HostSnapshot(
        id=user.id,  # type: ignore[arg-type]
        name=user.name,
        email=user.email,
        time_zone=user.time_zone,
        locale=user.locale,
        time_format=user.time_format,
        username=user.username,
    )


def snapshot_of(
    booking: BookingRecord,
    *,
    event_type: EventType,
    hosts: Sequence[User],
    attendees: Sequence[AttendeeSnapshot],
    original: Booking | None,
    event_id: str,
    team_name: str | None = None,
    event: BookingEvent = BookingEvent.CREATED,
    payment: PaymentSnapshot | None = None,
    committed_at: datetime | None = None,
) -> PostCommitPayload:
    """The payload of `booking`; `hosts` start with the organizer."""
    host_snapshots = [host_snapshot(h) for h in hosts]
    return PostCommitPayload(
        event_id=event_id,
        event=event,
        booking_id=booking.id,
        booking_uid=booking.uid,
        title=booking.title,
        description=booking.description,
        start=booking.start_time,
        end=booking.end_time,
        created_at=booking.created_at,
        status=booking.status,
        location=booking.location,
        metadata=booking.metadata,
        responses=booking.responses,
        tracking_id=booking.tracking_id,
        confirmed_by_default=is_confirmed_by_default(event_type),
        team_id=booking.team_id,
        team_name=team_name,
        event_type=EventTypeSnapshot(
            id=event_type.id,  # type: ignore[arg-type]
            slug=event_type.slug,
            title=event_type.title,
            length_minutes=event_type.length_minutes,
            price=event_type.price,
            currency=event_type.currency,
            requires_confirmation=event_type.requires_confirmation,
            owner_id=event_type.owner_id,
            team_id=event_type.team_id,
        ),
        organizer=host_snapshots[0],
        hosts=host_snapshots,
        attendees=list(attendees),
        reschedule=RescheduleSnapshot(
            original_uid=original.uid,
            original_booking_id=original.id,  # type: ignore[arg-type]
            original_start=original.start_time,
            original_end=original.end_time,
            reason=original.cancellation_reason,
        )
        if original
        else None,
        paid=booking.paid,
        cancellation_reason=booking.cancellation_reason,
        cancelled_by=booking.cancelled_by,
        rejection_reason=booking.rejection_reason,
        payment=payment,
        committed_at=committed_at,
    )


def _team_name(session: Session, team_id: int | None) -> str | None:
    team = session.get(Team, team_id) if team_id is not None else None
    return team.name if team else None


def build_payload(
    session: Session,
    booking: Booking,
    *,
    event_id: str,
    event: BookingEvent = BookingEvent.CREATED,
    payment: PaymentSnapshot | None = None,
    committed_at: datetime | None = None,
) -> PostCommitPayload:
    """The payload of `booking` as its rows are now."""
    event_type = session.get(EventType, booking.event_type_id)
    organizer = session.get(User, booking.user_id)
    assert event_type is not None and organizer is not None
    co_hosts = session.exec(
        select(User)
        .join(BookingHost, col(BookingHost.user_id) == User.id)
        .where(BookingHost.booking_id == booking.id)
        .order_by(col(BookingHost.id))
    ).all()
    attendees = session.exec(
        select(Attendee).where(Attendee.booking_id == booking.id).order_by(col(Attendee.id))
    ).all()
    original = (
        session.exec(select(Booking).where(Booking.uid == booking.from_reschedule)).first()
        if booking.from_reschedule
        else None
    )
    return snapshot_of(
        BookingRecord.of(booking),
        event_type=event_type,
        hosts=[organizer, *co_hosts],
        attendees=[
            AttendeeSnapshot(
                name=a.name,
                email=a.email,
                time_zone=a.time_zone,
                locale=a.locale,
                phone_number=a.phone_number,
            )
            for a in attendees
        ],
        original=original,
        event_id=event_id,
        team_name=_team_name(session, booking.team_id),
        event=event,
        payment=payment,
        committed_at=committed_at,
    )

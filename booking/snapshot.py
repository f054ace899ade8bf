"""Build the post-commit payload: from the objects in hand, or from the database rows.

`create_booking` builds it from what it is writing, inside the booking transaction (the
snapshot the outbox keeps); periodic flows load the current rows, so they act on what the
booking is now.
"""

from collections.abc import Sequence

from sqlmodel import Session, col, select

from booking.models import Attendee, Booking, BookingHost, EventType, User
from booking.payload import (
    AttendeeSnapshot,
    EventTypeSnapshot,
    HostSnapshot,
    PostCommitPayload,
    RescheduleSnapshot,
)


def is_confirmed_by_default(event_type: EventType) -> bool:
    return not event_type.requires_confirmation and event_type.price == 0


def snapshot_of(
    booking: Booking,
    *,
    event_type: EventType,
    hosts: Sequence[User],
    attendees: Sequence[Attendee],
    original: Booking | None,
    event_id: str,
) -> PostCommitPayload:
    """The payload of `booking`; `hosts` hold the organizer (`booking.user_id`)."""
    host_snapshots = [
        HostSnapshot(
            id=h.id,  # type: ignore[arg-type]
            name=h.name,
            email=h.email,
            time_zone=h.time_zone,
            locale=h.locale,
            time_format=h.time_format,
        )
        for h in hosts
    ]
    organizer = next(h for h in host_snapshots if h.id == booking.user_id)
    return PostCommitPayload(
        event_id=event_id,
        booking_id=booking.id,  # type: ignore[arg-type]
        booking_uid=booking.uid,
        title=booking.title,
        description=booking.description,
        start=booking.start_time,
        end=booking.end_time,
        created_at=booking.created_at,
        status=booking.status,
        location=booking.location,
        metadata=booking.booking_metadata,
        responses=booking.responses,
        tracking_id=booking.tracking_id,
        confirmed_by_default=is_confirmed_by_default(event_type),
        team_id=booking.team_id,
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
        organizer=organizer,
        hosts=[organizer, *(h for h in host_snapshots if h.id != organizer.id)],
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
        reschedule=RescheduleSnapshot(
            original_uid=original.uid,
            original_booking_id=original.id,  # type: ignore[arg-type]
            original_start=original.start_time,
            original_end=original.end_time,
        )
        if original
        else None,
    )


def build_payload(session: Session, booking: Booking, *, event_id: str) -> PostCommitPayload:
    """The payload of `booking` as its rows are now."""
    event_type = session.get(EventType, booking.event_type_id)
    assert event_type is not None
    hosts = session.exec(
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
        booking,
        event_type=event_type,
        hosts=hosts,
        attendees=attendees,
        original=original,
        event_id=event_id,
    )

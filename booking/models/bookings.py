"""Event types, bookings, their attendees and hosts, and hosts' contacts."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from booking.enums import BookingStatus
from booking.models.types import UTCDateTime, enum_type
from booking.timeutil import utcnow


class EventType(SQLModel, table=True):
    """What can be booked: owned by a user, or by a team with its hosts in EventTypeHost."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str
    title: str
    length_minutes: int = 30
    price: int = 0  # minor units of `currency`
    currency: str = "usd"
    requires_confirmation: bool = False
    owner_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    location: str | None = None


class EventTypeHost(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("event_type_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_type_id: int = Field(foreign_key="eventtype.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)


class Booking(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(unique=True, index=True)
    event_type_id: int = Field(foreign_key="eventtype.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)  # the organizer
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    title: str
    description: str | None = None
    start_time: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    end_time: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: BookingStatus = Field(index=True, sa_type=enum_type(BookingStatus))
    location: str | None = None
    booking_metadata: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    responses: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    from_reschedule: str | None = Field(default=None, index=True)  # uid of the original
    rescheduled: bool = False
    cancellation_reason: str | None = None
    cancelled_by: str | None = None  # host, attendee or system
    rejection_reason: str | None = None
    paid: bool = False
    tracking_id: str | None = None
    no_show_host: bool | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class Payment(SQLModel, table=True):
    """A payment recorded for a booking of a paid event type; `external_id` (the payment
    provider's id) makes recording it again a no-op."""

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True)
    booking_id: int = Field(foreign_key="booking.id", index=True)
    amount: int  # minor units of `currency`
    currency: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class BookingHost(SQLModel, table=True):
    """A host booked besides the organizer (team event types); the organizer is the
    booking's own `user_id`."""

    __table_args__ = (UniqueConstraint("booking_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    booking_id: int = Field(foreign_key="booking.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)


class Attendee(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    booking_id: int = Field(foreign_key="booking.id", index=True)
    name: str
    email: str = Field(index=True)
    time_zone: str
    locale: str = "en"
    phone_number: str | None = None
    no_show: bool = False


class Contact(SQLModel, table=True):
    """A person who booked a host, kept once per host and email."""

    __table_args__ = (
        UniqueConstraint("owner_id", "email"),
        Index("ix_contact_owner_last_booked", "owner_id", "last_booked_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id")
    email: str
    name: str
    phone_number: str | None = None
    time_zone: str | None = None
    last_booking_uid: str | None = None
    last_booked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))

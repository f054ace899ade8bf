"""The post-commit payload: a JSON-safe snapshot of a booking, written to the outbox.

Flows read this snapshot, not the live rows, so they act on the booking as it was committed.
It carries locales and time zones instead of translation functions; consumers rebuild those.
Bump SCHEMA_VERSION on any change a running flow could misread; fields added later have
defaults, so events written by an older version still load.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from booking.enums import BookingEvent, BookingStatus
from booking.timeutil import UTCInstant

# 2: host usernames, team name, reschedule reason. 3: the booking event (confirmed, rejected,
# cancelled, paid) with its reason, who cancelled, and the payment.
SCHEMA_VERSION = 3


class _Snapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PersonSnapshot(_Snapshot):
    name: str
    email: str
    time_zone: str
    locale: str


class HostSnapshot(PersonSnapshot):
    id: int
    time_format: int
    username: str | None = None


class AttendeeSnapshot(PersonSnapshot):
    phone_number: str | None = None


class EventTypeSnapshot(_Snapshot):
    id: int
    slug: str
    title: str
    length_minutes: int
    price: int
    currency: str
    requires_confirmation: bool
    owner_id: int | None
    team_id: int | None


class RescheduleSnapshot(_Snapshot):
    """The booking this one replaces."""

    original_uid: str
    original_booking_id: int
    original_start: UTCInstant
    original_end: UTCInstant
    reason: str | None = None


def cancellation_note(payload: "PostCommitPayload") -> str:
    """Why a cancelled booking's pending work was cancelled, as its rows record it."""
    by = f" by the {payload.cancelled_by}" if payload.cancelled_by else ""
    return f"booking cancelled{by}"


class PaymentSnapshot(_Snapshot):
    id: str  # the payment provider's id
    amount: int  # minor units of `currency`
    currency: str


class PostCommitPayload(_Snapshot):
    schema_version: Literal[1, 2, 3] = SCHEMA_VERSION
    event_id: str
    event: BookingEvent = BookingEvent.CREATED
    booking_id: int
    booking_uid: str
    title: str
    description: str | None
    start: UTCInstant
    end: UTCInstant
    created_at: UTCInstant
    status: BookingStatus
    location: str | None
    metadata: dict[str, Any]
    responses: dict[str, Any]
    tracking_id: str | None
    confirmed_by_default: bool
    team_id: int | None
    team_name: str | None = None
    event_type: EventTypeSnapshot
    organizer: HostSnapshot
    hosts: list[HostSnapshot]
    attendees: list[AttendeeSnapshot]
    reschedule: RescheduleSnapshot | None
    paid: bool = False
    cancellation_reason: str | None = None
    cancelled_by: str | None = None
    rejection_reason: str | None = None
    payment: PaymentSnapshot | None = None
    # When the event committed: the order of one booking's messages to a subscriber.
    committed_at: UTCInstant | None = None

    @property
    def is_reschedule(self) -> bool:
        return self.reschedule is not None

    @property
    def confirmed(self) -> bool:
        """ACCEPTED when the event committed: by default at creation, or by a confirmation
        or a payment since. What a confirmed booking gets (meeting triggers, integrations,
        reminders) is planned only then."""
        return self.status == BookingStatus.ACCEPTED

    @property
    def needs_payment(self) -> bool:
        return self.event_type.price > 0 and not self.paid

    @property
    def plans_confirmed_work(self) -> bool:
        """This event is when the booking became confirmed: at creation, by a confirmation,
        or by a payment. Then its meeting triggers, confirmed-only integrations and reminders
        are planned; a cancellation or rejection plans none."""
        return self.confirmed and self.event in (
            BookingEvent.CREATED,
            BookingEvent.CONFIRMED,
            BookingEvent.PAID,
        )

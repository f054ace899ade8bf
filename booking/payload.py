"""The post-commit payload: a JSON-safe snapshot of a booking, written to the outbox.

Flows read this snapshot, not the live rows, so they act on the booking as it was committed.
It carries locales and time zones instead of translation functions; consumers rebuild those.
Bump SCHEMA_VERSION on any change a running flow could misread; fields added later have
defaults, so events written by an older version still load.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from booking.enums import BookingStatus
from booking.timeutil import UTCInstant

SCHEMA_VERSION = 2  # 2: host usernames, team name, reschedule reason


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


class PostCommitPayload(_Snapshot):
    schema_version: Literal[1, 2] = SCHEMA_VERSION
    event_id: str
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

    @property
    def is_reschedule(self) -> bool:
        return self.reschedule is not None

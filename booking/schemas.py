"""What a caller sends to `create_booking` and what it gets back.

The limits are a booking product's, documented in the README: free text is bounded, the
booker's answers are small JSON, a booking does not start in the past (beyond a small clock
tolerance) nor last more than a day. No text may hold a NUL character, which PostgreSQL
refuses.
"""

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
)

from booking.enums import BookingStatus
from booking.phone import E164_PATTERN
from booking.timeutil import TimeZoneName, utcnow

MAX_EVENT_TYPE_ID = 2**31 - 1  # the database's integer key
MAX_LOCATION_CHARS = 1000
MAX_RESPONSES_BYTES = 16 * 1024  # as JSON
MAX_RESPONSES_DEPTH = 4
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_CHARS = 40
MAX_METADATA_VALUE_CHARS = 500
MAX_BOOKING_LENGTH = timedelta(hours=24)
PAST_START_TOLERANCE = timedelta(minutes=5)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


def _check_json(value: Any, depth: int = 1) -> None:
    if depth > MAX_RESPONSES_DEPTH:
        raise ValueError(f"must nest at most {MAX_RESPONSES_DEPTH} levels")
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


def _bounded_responses(value: dict[str, Any]) -> dict[str, Any]:
    _check_json(value)
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_RESPONSES_BYTES:
        raise ValueError(f"must be at most {MAX_RESPONSES_BYTES} bytes as JSON")
    return value


def _bounded_metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"must have at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY_CHARS or len(item) > MAX_METADATA_VALUE_CHARS:
            raise ValueError(
                f"keys must be at most {MAX_METADATA_KEY_CHARS} characters and values "
                f"at most {MAX_METADATA_VALUE_CHARS}"
            )
        _no_nul(key)
        _no_nul(item)
    return value


class AttendeeInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text = Field(min_length=1, max_length=200)
    email: EmailStr
    time_zone: TimeZoneName
    locale: str = Field(default="en", pattern=r"^[a-z]{2,3}([-_][A-Za-z]{2,4})?$")
    phone_number: str | None = Field(default=None, pattern=E164_PATTERN)


class BookingRequest(BaseModel):
    """A new booking, or a reschedule of `reschedule_uid`; `dry_run` writes nothing."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_type_id: int = Field(ge=1, le=MAX_EVENT_TYPE_ID)
    start: AwareDatetime
    end: AwareDatetime
    booker: AttendeeInput
    guests: list[AttendeeInput] = Field(default_factory=list, max_length=50)
    responses: Annotated[dict[str, Any], AfterValidator(_bounded_responses)] = Field(
        default_factory=dict
    )
    metadata: Annotated[dict[str, str], AfterValidator(_bounded_metadata)] = Field(
        default_factory=dict
    )
    location: Text | None = Field(default=None, max_length=MAX_LOCATION_CHARS)
    reschedule_uid: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    reschedule_reason: Text | None = Field(default=None, max_length=500)
    tracking_id: Text | None = Field(default=None, max_length=200)
    dry_run: bool = False

    @field_validator("start")
    @classmethod
    def _not_in_the_past(cls, start: datetime) -> datetime:
        if start < utcnow() - PAST_START_TOLERANCE:
            raise ValueError("must not be in the past")
        return start

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError("must be after start")
        if start is not None and end - start > MAX_BOOKING_LENGTH:
            raise ValueError("a booking may last at most 24 hours")
        return end


class BookingResult(BaseModel):
    uid: str
    booking_id: int | None
    status: BookingStatus
    confirmed_by_default: bool
    dry_run: bool
    event_id: str | None
    rescheduled_from: str | None
    dispatch: Literal["handed-off", "pending-relay", "skipped-dry-run"]

"""What a caller sends to `create_booking` and what it gets back."""

from datetime import datetime
from typing import Any, Literal

from pydantic import (
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
from booking.timeutil import TimeZoneName


class AttendeeInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    time_zone: TimeZoneName
    locale: str = Field(default="en", pattern=r"^[a-z]{2,3}([-_][A-Za-z]{2,4})?$")
    phone_number: str | None = Field(default=None, pattern=E164_PATTERN)


class BookingRequest(BaseModel):
    """A new booking, or a reschedule of `reschedule_uid`; `dry_run` writes nothing."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_type_id: int
    start: AwareDatetime
    end: AwareDatetime
    booker: AttendeeInput
    guests: list[AttendeeInput] = Field(default_factory=list, max_length=50)
    responses: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    location: str | None = None
    reschedule_uid: str | None = None
    reschedule_reason: str | None = Field(default=None, max_length=500)
    tracking_id: str | None = Field(default=None, max_length=200)
    dry_run: bool = False

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError("must be after start")
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

"""Small helpers for instants and IANA zones used across the booking side and the flows."""

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, PlainSerializer


def utcnow() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)


def iso_utc(value: datetime) -> str:
    """ISO-8601 in UTC with a `Z` suffix, the form every payload and webhook uses."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_time_zone(name: str) -> str:
    """Return `name` if it is a known IANA zone, else raise ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known IANA time zone") from None
    return name


UTCInstant = Annotated[
    AwareDatetime,
    AfterValidator(lambda value: value.astimezone(UTC)),
    PlainSerializer(iso_utc, return_type=str, when_used="json"),
]
TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from booking.enums import BookingStatus
from booking.payload import (
    SCHEMA_VERSION,
    AttendeeSnapshot,
    EventTypeSnapshot,
    HostSnapshot,
    PostCommitPayload,
    RescheduleSnapshot,
)

text = st.text(max_size=30)
zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.astimezone(timezone(timedelta(hours=5, minutes=30))))  # any offset in
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
hosts = st.builds(
    HostSnapshot,
    id=st.integers(1, 10**6),
    name=text,
    email=text,
    time_zone=zones,
    locale=st.sampled_from(["en", "de", "pt-BR"]),
    time_format=st.sampled_from([12, 24]),
)
payloads = st.builds(
    PostCommitPayload,
    event_id=st.uuids().map(str),
    booking_id=st.integers(1, 10**9),
    booking_uid=text,
    title=text,
    description=st.none() | text,
    start=instants,
    end=instants,
    created_at=instants,
    status=st.sampled_from(BookingStatus),
    location=st.none() | text,
    metadata=st.dictionaries(text, json_values, max_size=3),
    responses=st.dictionaries(text, json_values, max_size=3),
    tracking_id=st.none() | text,
    confirmed_by_default=st.booleans(),
    team_id=st.none() | st.integers(1, 1000),
    event_type=st.builds(
        EventTypeSnapshot,
        id=st.integers(1, 1000),
        slug=text,
        title=text,
        length_minutes=st.integers(5, 480),
        price=st.integers(0, 10**6),
        currency=st.sampled_from(["usd", "eur"]),
        requires_confirmation=st.booleans(),
        owner_id=st.none() | st.integers(1, 1000),
        team_id=st.none() | st.integers(1, 1000),
    ),
    organizer=hosts,
    hosts=st.lists(hosts, min_size=1, max_size=3),
    attendees=st.lists(
        st.builds(
            AttendeeSnapshot,
            name=text,
            email=text,
            time_zone=zones,
            locale=st.just("en"),
            phone_number=st.none() | st.just("+4915112345678"),
        ),
        min_size=1,
        max_size=3,
    ),
    reschedule=st.none()
    | st.builds(
        RescheduleSnapshot,
        original_uid=text,
        original_booking_id=st.integers(1, 10**6),
        original_start=instants,
        original_end=instants,
    ),
)


@given(payloads)
def test_payload_round_trips_through_json_unchanged(payload: PostCommitPayload) -> None:
    wire = json.dumps(payload.model_dump(mode="json"))

    restored = PostCommitPayload.model_validate(json.loads(wire))

    assert restored == payload
    assert restored.model_dump(mode="json") == payload.model_dump(mode="json")


@given(payloads)
def test_payload_dates_are_iso_8601_utc(payload: PostCommitPayload) -> None:
    data = payload.model_dump(mode="json")

    for key in ("start", "end", "created_at"):
        assert data[key].endswith("Z")
        assert datetime.fromisoformat(data[key]).utcoffset() == timedelta(0)
    assert data["schema_version"] == SCHEMA_VERSION == 3

"""Bad input gets one `BookingError` that names the field, repeats no personal data and
writes nothing, on both databases (the acceptance run's defects are the named cases)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from booking.errors import BookingError, InvalidBookingRequest, RescheduleTargetNotFound
from booking.schemas import MAX_RESPONSES_BYTES
from booking.service import create_booking
from tests.factories import RecordingHandoff, booking_request, make_event_type, row_counts

SECRET_NOTE = "call me on +4915112345678"
MB = "x" * 1_000_000


def guest(name: str) -> dict[str, str]:
    return {"name": name, "email": "guest.private@mail.example", "time_zone": "UTC"}


def now_plus(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_type_id": 2**31}, "event_type_id"),
        ({"event_type_id": 2**63}, "event_type_id"),
        ({"event_type_id": 0}, "event_type_id"),
        ({"booker": guest("Ada\x00Booker")}, "booker.name"),
        ({"guests": [guest("Grace\x00")]}, "guests.0.name"),
        ({"responses": {"notes": f"{SECRET_NOTE}\x00"}}, "responses"),
        ({"responses": {"a\x00": SECRET_NOTE}}, "responses"),
        ({"responses": {"notes": MB}}, "responses"),
        ({"responses": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "responses"),
        ({"metadata": {"k": MB}}, "metadata"),
        ({"location": MB}, "location"),
        ({"location": "Room\x001"}, "location"),
        ({"tracking_id": "t\x00"}, "tracking_id"),
        ({"reschedule_uid": MB}, "reschedule_uid"),
        ({"reschedule_uid": "abc\x00"}, "reschedule_uid"),
        ({"start": "1999-03-14T15:00:00+00:00", "end": "1999-03-14T15:30:00+00:00"}, "start"),
        ({"start": now_plus(days=7), "end": now_plus(days=372)}, "end"),
        ({"start": now_plus(days=7), "end": now_plus(days=8, minutes=1)}, "end"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    session: Session, change: dict[str, Any], field: str
) -> None:
    event_type = make_event_type(session)
    before = row_counts(session)

    with pytest.raises(InvalidBookingRequest) as raised:
        create_booking(booking_request(event_type) | change, session=session)

    assert field in raised.value.fields
    message = str(raised.value)
    assert len(message) < 1000
    for private in (SECRET_NOTE, "guest.private", "Ada", "Grace", "Room"):
        assert private not in message
    assert row_counts(session) == before


def test_limits_accept_what_a_booking_product_allows(session: Session) -> None:
    event_type = make_event_type(session)
    request = booking_request(
        event_type,
        start=datetime.now(UTC) - timedelta(minutes=2),  # a clock a little behind
        location="x" * 1000,
        responses={"notes": "y" * (MAX_RESPONSES_BYTES - 100), "guests": ["a@b.example"]},
    )
    request["end"] = (datetime.now(UTC) + timedelta(hours=23)).isoformat()

    assert create_booking(request, session=session).booking_id is not None


def test_errors_repeat_at_most_an_excerpt_of_their_input() -> None:
    """The schema caps a reschedule uid at 64 characters; the error caps it again, so no
    caller can make an error message as large as its input (acceptance saw 1 MB)."""
    error = RescheduleTargetNotFound(MB)

    assert len(str(error)) < 200 and str(error).endswith("…")
    assert str(RescheduleTargetNotFound("abc")) == "reschedule_uid: no booking with uid abc"


# Any text, any responses: either a booking or one BookingError, never a database error.
texts = st.text(st.characters(codec="utf-8"), max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=texts,
    location=st.none() | texts,
    responses=st.dictionaries(texts, json_values, max_size=4),
    event_type_id=st.integers(min_value=-(2**70), max_value=2**70),
)
def test_any_input_books_or_raises_a_booking_error(
    session: Session, name: str, location: str | None, responses: dict, event_type_id: int
) -> None:
    event_type = make_event_type(session)
    request = booking_request(
        event_type, guests=[guest(name)], location=location, responses=responses
    )
    if event_type_id % 3 == 0:
        request["event_type_id"] = event_type_id
    before = row_counts(session)
    try:
        create_booking(request, session=session, handoff=RecordingHandoff())
    except BookingError as exc:
        assert row_counts(session) == before
        message = str(exc)
        assert "guest.private@mail.example" not in message
        assert request["booker"]["email"] not in message
        if len(name.strip()) >= 8:  # shorter strings may occur in any English message
            assert name.strip() not in message
    session.rollback()

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from booking.enums import BookingStatus
from booking.errors import (
    InvalidBookingRequest,
    RescheduleTargetCancelled,
    RescheduleTargetNotFound,
    UnknownEventType,
)
from booking.models import Attendee, Booking, BookingHost, OutboxEvent
from booking.outbox import load_payload
from booking.service import create_booking
from tests.factories import (
    RecordingHandoff,
    booking_request,
    make_event_type,
    make_team_event_type,
    make_user,
    row_counts,
)


def test_new_booking_commits_booking_attendees_and_outbox_event(session: Session) -> None:
    event_type = make_event_type(session)
    handoff = RecordingHandoff()

    result = create_booking(booking_request(event_type), session=session, handoff=handoff)

    booking = session.exec(select(Booking).where(Booking.uid == result.uid)).one()
    assert booking.status == BookingStatus.ACCEPTED
    assert result.confirmed_by_default and result.dispatch == "handed-off"
    assert handoff.submitted == [result.event_id]
    assert len(session.exec(select(Attendee).where(Attendee.booking_id == booking.id)).all()) == 1
    event = session.get(OutboxEvent, result.event_id)
    assert event is not None and event.dispatched_at is None and event.dispatch_mode == "bundled"
    payload = load_payload(session, result.event_id)
    assert payload.booking_uid == result.uid and payload.confirmed_by_default
    assert payload.start == datetime(2031, 3, 14, 15, 0, tzinfo=UTC)
    assert event.payload["start"] == "2031-03-14T15:00:00Z"
    assert payload.attendees[0].time_zone == "Europe/Berlin" and payload.attendees[0].locale == "de"


@pytest.mark.parametrize(
    ("event_type_fields", "status"),
    [
        ({"requires_confirmation": True}, BookingStatus.PENDING),
        ({"price": 2500}, BookingStatus.PENDING),
        ({}, BookingStatus.ACCEPTED),
    ],
)
def test_status_follows_confirmed_by_default(
    session: Session, event_type_fields: dict, status: BookingStatus
) -> None:
    event_type = make_event_type(session, **event_type_fields)

    result = create_booking(booking_request(event_type), session=session)

    assert result.status == status
    assert load_payload(session, result.event_id).confirmed_by_default is (
        status == BookingStatus.ACCEPTED
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end": "2031-03-14T14:00:00+00:00"}, "end"),
        ({"booker": {"name": "A", "email": "not-an-email", "time_zone": "UTC"}}, "booker.email"),
        (
            {"booker": {"name": "A", "email": "a@b.example", "time_zone": "Mars/Olympus"}},
            "booker.time_zone",
        ),
        ({"start": "2031-03-14T15:00:00"}, "start"),
        ({"guests": [{"name": "", "email": "g@b.example", "time_zone": "UTC"}]}, "guests.0.name"),
    ],
)
def test_invalid_request_names_the_field_and_writes_nothing(
    session: Session, change: dict, field: str
) -> None:
    event_type = make_event_type(session)
    before = row_counts(session)
    request = booking_request(event_type) | change

    with pytest.raises(InvalidBookingRequest) as raised:
        create_booking(request, session=session, handoff=RecordingHandoff())

    assert field in raised.value.fields
    assert "not-an-email" not in str(raised.value)  # inputs are personal data: never echoed
    assert row_counts(session) == before


def test_unknown_event_type_writes_nothing(session: Session) -> None:
    event_type = make_event_type(session)
    before = row_counts(session)

    with pytest.raises(UnknownEventType):
        create_booking(booking_request(event_type, event_type_id=987654), session=session)

    assert row_counts(session) == before


def test_reschedule_of_missing_booking_writes_nothing(session: Session) -> None:
    event_type = make_event_type(session)
    before = row_counts(session)

    with pytest.raises(RescheduleTargetNotFound):
        create_booking(booking_request(event_type, reschedule_uid="nope"), session=session)

    assert row_counts(session) == before


def test_reschedule_of_cancelled_booking_writes_nothing(session: Session) -> None:
    event_type = make_event_type(session)
    first = create_booking(booking_request(event_type), session=session)
    create_booking(booking_request(event_type, reschedule_uid=first.uid), session=session)
    before = row_counts(session)

    with pytest.raises(RescheduleTargetCancelled):
        create_booking(booking_request(event_type, reschedule_uid=first.uid), session=session)

    assert row_counts(session) == before


def test_reschedule_links_bookings_and_snapshots_the_original(session: Session) -> None:
    event_type = make_event_type(session)
    original = create_booking(booking_request(event_type), session=session)
    new_start = datetime(2031, 3, 15, 9, 30, tzinfo=UTC)

    result = create_booking(
        booking_request(event_type, start=new_start, reschedule_uid=original.uid),
        session=session,
    )

    old = session.exec(select(Booking).where(Booking.uid == original.uid)).one()
    new = session.exec(select(Booking).where(Booking.uid == result.uid)).one()
    assert old.status == BookingStatus.CANCELLED and old.rescheduled
    assert new.from_reschedule == original.uid and result.rescheduled_from == original.uid
    payload = load_payload(session, result.event_id)
    assert payload.is_reschedule
    assert payload.reschedule is not None
    assert payload.reschedule.original_uid == original.uid
    assert payload.reschedule.original_start == datetime(2031, 3, 14, 15, 0, tzinfo=UTC)
    assert payload.start == new_start


def test_dry_run_writes_and_dispatches_nothing(session: Session) -> None:
    event_type = make_event_type(session, requires_confirmation=True)
    handoff = RecordingHandoff()
    before = row_counts(session)

    result = create_booking(
        booking_request(event_type, dry_run=True), session=session, handoff=handoff
    )

    assert result.dry_run and result.booking_id is None and result.event_id is None
    assert result.status == BookingStatus.PENDING and result.dispatch == "skipped-dry-run"
    assert handoff.submitted == []
    assert row_counts(session) == before


def test_team_booking_books_every_host_with_the_first_as_organizer(session: Session) -> None:
    hosts = [make_user(session, locale="fr"), make_user(session)]
    event_type = make_team_event_type(session, hosts)

    result = create_booking(booking_request(event_type), session=session)

    payload = load_payload(session, result.event_id)
    assert [h.id for h in payload.hosts] == [h.id for h in hosts]
    assert payload.organizer.id == hosts[0].id and payload.organizer.locale == "fr"
    booked = session.exec(select(BookingHost).where(BookingHost.booking_id == result.booking_id))
    assert session.get(Booking, result.booking_id).user_id == hosts[0].id
    assert [row.user_id for row in booked] == [h.id for h in hosts[1:]]  # co-hosts


def test_failed_hand_off_still_books_and_leaves_the_event_for_the_relay(session: Session) -> None:
    event_type = make_event_type(session)

    result = create_booking(
        booking_request(event_type), session=session, handoff=RecordingHandoff(fail=True)
    )

    assert result.dispatch == "pending-relay"
    assert session.get(OutboxEvent, result.event_id).dispatched_at is None


def test_failure_while_writing_the_outbox_leaves_no_booking(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        before = row_counts(session)
    _refuse_outbox_inserts(engine)

    with Session(engine) as session, pytest.raises(Exception, match="outbox refused"):
        create_booking(booking_request(event_type), session=session)

    with Session(engine) as session:
        assert row_counts(session) == before


def _refuse_outbox_inserts(engine: Engine) -> None:
    """A real database-side failure at the last write of the booking transaction."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outboxevent "
                    "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_outbox() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'outbox refused'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outboxevent "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"
                )
            )


def test_booking_times_are_stored_in_utc(session: Session) -> None:
    event_type = make_event_type(session)
    start = datetime(2031, 3, 14, 16, 0, tzinfo=UTC) + timedelta(hours=1)

    result = create_booking(
        booking_request(
            event_type,
            start=start,
            end="2031-03-14T18:30:00+01:00",  # the same instant as 17:30 UTC
        ),
        session=session,
    )

    booking = session.get(Booking, result.booking_id)
    assert booking.end_time == datetime(2031, 3, 14, 17, 30, tzinfo=UTC)

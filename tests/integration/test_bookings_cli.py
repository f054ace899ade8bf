"""`booking bookings ...`: support moves a booking through its life from the shell, through
the same functions, outbox and hand-off as the booking code, against a real Prefect server
with the deployments of prefect.yaml, on SQLite and PostgreSQL."""

from datetime import UTC, datetime

import pytest
from prefect.client.orchestration import SyncPrefectClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from booking.models import Booking, OutboxEvent
from booking.service import create_booking
from cli.main import app
from local.stack import LocalPrefect
from tests.factories import booking_request, make_event_type
from tests.helpers import runs_of_booking

pytestmark = pytest.mark.integration


@pytest.fixture
def support(configure, deployed: LocalPrefect):
    configure(prefect_api_url=deployed.api_url)

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, ["bookings", *args])
        assert result.exit_code == code, result.output
        return result.output

    return run


def events(session: Session, uid: str) -> list[str]:
    session.expire_all()
    rows = session.exec(
        select(OutboxEvent).where(OutboxEvent.booking_uid == uid).order_by(col(OutboxEvent.id))
    )
    return sorted(str(row.payload.get("event", "CREATED")) for row in rows)


def booking(session: Session, uid: str) -> Booking:
    session.expire_all()
    return session.exec(select(Booking).where(Booking.uid == uid)).one()


def test_support_confirms_then_cancels_and_sees_each_step(
    support, session: Session, prefect_client: SyncPrefectClient
) -> None:
    kind = make_event_type(session, requires_confirmation=True)
    uid = create_booking(booking_request(kind), session=session).uid

    confirmed = support("confirm", uid)
    cancelled = support("cancel", uid, "--reason", "host ill", "--by", "system")

    assert f"booking {uid}: ACCEPTED (confirmed)" in confirmed
    assert "its post-commit run was created" in confirmed
    assert f"booking {uid}: CANCELLED (cancelled)" in cancelled
    row = booking(session, uid)
    assert (row.cancellation_reason, row.cancelled_by) == ("host ill", "system")
    assert events(session, uid) == ["CANCELLED", "CONFIRMED", "CREATED"]
    assert len(runs_of_booking(prefect_client, uid)) == 2  # the two moves' runs, handed off
    shown = support("show", uid)
    lines = shown.splitlines()
    assert lines[0].startswith(f"booking {uid}\tCANCELLED\t") and "cancelled by system" in lines[0]
    assert [line.split("\t")[1] for line in lines[2:5]] == ["created", "confirmed", "cancelled"]
    assert "deliveries: none" in shown
    assert "@" not in shown  # no attendee's email


def test_support_rejects_and_records_a_payment(support, session: Session) -> None:
    kind = make_event_type(session, requires_confirmation=True)
    rejected = create_booking(booking_request(kind), session=session).uid
    paid_kind = make_event_type(session, price=4500, currency="eur")
    unpaid = create_booking(booking_request(paid_kind), session=session).uid

    assert "REJECTED (rejected)" in support("reject", rejected, "--reason", "Ausgebucht")
    assert "ACCEPTED (paid)" in support("record-payment", unpaid, "--payment-id", "pi_42")
    again = support("record-payment", unpaid, "--payment-id", "pi_42")

    assert booking(session, rejected).rejection_reason == "Ausgebucht"
    assert booking(session, unpaid).paid
    assert "recorded already" in again


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["cancel", "{uid}"], "cannot cancel booking {uid}: the booking is CANCELLED"),  # twice
        (["confirm", "{uid}"], "cannot confirm booking {uid}: the booking is CANCELLED"),
        (["reject", "{uid}"], "cannot reject booking {uid}: the booking is CANCELLED"),
        (["record-payment", "{uid}", "--payment-id", "pi_1"], "its event type is free"),
        (["cancel", "no-such-uid"], "no-such-uid"),
        (["show", "no-such-uid"], "no booking with uid no-such-uid"),
        (["cancel", "{other}", "--by", "nobody"], "host, attendee, system"),
    ],
)
def test_a_move_the_booking_cannot_make_is_one_line_and_writes_nothing(
    support, session: Session, args: list[str], says: str
) -> None:
    kind = make_event_type(session)
    uid = create_booking(booking_request(kind), session=session).uid
    later = datetime(2031, 3, 15, 15, 0, tzinfo=UTC)
    other = create_booking(booking_request(kind, start=later), session=session).uid
    support("cancel", uid)
    before = {u: events(session, u) for u in (uid, other)}

    output = support(*(a.format(uid=uid, other=other) for a in args), code=2)

    assert output.startswith("error: ") and output.count("\n") == 1, output
    assert says.format(uid=uid) in output
    assert {u: events(session, u) for u in (uid, other)} == before
    assert booking(session, other).status.value == "ACCEPTED"


def test_every_bookings_command_has_help(support) -> None:
    for command in ("show", "confirm", "reject", "cancel", "record-payment"):
        assert "Usage" in support(command, "--help")

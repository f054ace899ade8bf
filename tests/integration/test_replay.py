"""`booking replay --booking`: a new deployment run with the booking's tags, and its link."""

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from booking.service import create_booking
from cli.main import app
from local.stack import LocalPrefect
from tests.factories import booking_request, make_event_type
from tests.helpers import runs_of_booking

pytestmark = pytest.mark.integration


def test_replaying_a_booking_starts_a_tagged_run_and_prints_its_link(
    deployed: LocalPrefect, session: Session, configure, prefect_client
) -> None:
    configure()
    booked = create_booking(booking_request(make_event_type(session)), session=session)

    result = CliRunner().invoke(app, ["replay", "--booking", booked.uid, "--concern", "webhooks"])

    assert result.exit_code == 0, result.output
    (run,) = runs_of_booking(prefect_client, booked.uid)
    assert {f"booking:{booked.uid}", "replay", "post-commit"} <= set(run.tags)
    assert run.parameters == {"event_id": booked.event_id, "booking_uid": booked.uid}
    assert f"/runs/flow-run/{run.id}" in result.output


def test_replaying_an_unknown_booking_is_a_clear_error(deployed: LocalPrefect, configure) -> None:
    configure()

    result = CliRunner().invoke(app, ["replay", "--booking", "nope"])

    assert result.exit_code == 2 and "no booking with this uid" in result.output

"""`booking replay --booking` and `booking deliveries recover`: a new deployment run, and
its link."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from booking.service import create_booking
from booking.timeutil import utcnow
from cli.main import app
from local.stack import LocalPrefect
from tests.factories import booking_request, make_event_type, make_subscription
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


def test_recovering_a_subscription_starts_one_run_and_prints_its_link(
    deployed: LocalPrefect, session: Session, configure, prefect_client
) -> None:
    configure()
    kind = make_event_type(session)
    sub = make_subscription(
        session, "http://127.0.0.1:9/hook", ["BOOKING_CREATED"], user_id=kind.owner_id
    )
    since = (utcnow() - timedelta(hours=2)).replace(microsecond=0)

    result = CliRunner().invoke(
        app, ["deliveries", "recover", "--subscription", str(sub.id), "--since", since.isoformat()]
    )

    assert result.exit_code == 0, result.output
    run_id = result.output.strip().rsplit("/", 1)[-1]
    run = prefect_client.read_flow_run(UUID(run_id))
    assert run.parameters["subscription_id"] == sub.id
    assert datetime.fromisoformat(run.parameters["since"]) == since.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "says"),
    [
        (timedelta(days=15), "at most 14 days back"),
        (timedelta(hours=-1), "must be before"),
    ],
)
def test_a_recovery_too_far_back_or_of_nothing_is_a_clear_error(
    deployed: LocalPrefect, session: Session, configure, since: timedelta, says: str
) -> None:
    configure()
    kind = make_event_type(session)
    sub = make_subscription(
        session, "http://127.0.0.1:9/hook", ["BOOKING_CREATED"], user_id=kind.owner_id
    )
    start = (utcnow() - since).isoformat()

    result = CliRunner().invoke(
        app, ["deliveries", "recover", "--subscription", str(sub.id), "--since", start]
    )
    unknown = CliRunner().invoke(
        app, ["deliveries", "recover", "--subscription", "424242", "--since", utcnow().isoformat()]
    )

    assert result.exit_code == 2 and says in result.output
    assert unknown.exit_code == 2 and "no subscription" in unknown.output

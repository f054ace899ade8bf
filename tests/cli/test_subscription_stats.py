"""`booking subscriptions stats` and the retention run's `subscription-health` table, from a
delivery log written as deliveries write it, on SQLite and PostgreSQL."""

import json
from datetime import timedelta

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from booking.enums import WebhookTrigger, WorkStatus
from booking.models import WebhookDelivery, WebhookRedelivery
from booking.service import create_booking
from booking.timeutil import utcnow
from cli.main import app
from tasks.delivery.health import subscription_health
from tests.factories import booking_request, make_event_type, make_subscription


def logged(session: Session, sub_id: int, message: str, attempt: int, status, ms: int, ago):
    session.add(
        WebhookDelivery(
            subscription_id=sub_id,
            booking_uid=f"uid-{message}",
            trigger_event=WebhookTrigger.BOOKING_CREATED,
            message_id=message,
            attempt=attempt,
            status_code=status,
            duration_ms=ms,
            error=None if status else "localhost did not answer within 3 s",
            created_at=utcnow() - ago,
        )
    )


@pytest.fixture
def log(session: Session):
    """Subscription `busy`: message a delivered at once, b at its second try, c not yet (a
    timeout; waiting for redelivery), d two days ago (outside the window). Subscription
    `quiet`: nothing."""
    event_type = make_event_type(session)
    busy = make_subscription(session, "http://hooks.example/in", ["BOOKING_CREATED"],
                             event_type_id=event_type.id)  # fmt: skip
    quiet = make_subscription(session, "http://quiet.example/in", ["BOOKING_CREATED"],
                              event_type_id=event_type.id)  # fmt: skip
    booked = create_booking(booking_request(event_type), session=session)
    hour, days = timedelta(hours=1), timedelta(days=2)
    logged(session, busy.id, "msg_a", 1, 200, 100, 3 * hour)
    logged(session, busy.id, "msg_b", 1, 503, 300, 2 * hour)
    logged(session, busy.id, "msg_b", 2, 200, 200, hour)
    logged(session, busy.id, "msg_c", 1, None, 3000, hour / 2)
    logged(session, busy.id, "msg_d", 1, 500, 900, days)
    session.add(
        WebhookRedelivery(
            dedupe_key="msg_c", booking_id=booked.booking_id, subscription_id=busy.id,
            message_id="msg_c",
            message={}, due_at=utcnow() + hour, status=WorkStatus.PENDING,
        )
    )  # fmt: skip
    session.commit()
    return busy.id, quiet.id


def test_health_counts_the_window_by_message(session: Session, log) -> None:
    busy, quiet = log

    health = {
        h.subscription_id: h for h in subscription_health(session, utcnow() - timedelta(days=1))
    }

    b = health[busy]
    assert (b.messages, b.waiting) == (3, 1)
    assert b.first_try_ok == pytest.approx(1 / 3) and b.delivered == pytest.approx(2 / 3)
    assert (b.p50_ms, b.p95_ms) == (200, pytest.approx(290))  # answered attempts: 100, 200, 300
    assert b.last_failure.startswith("localhost did not answer")
    q = health[quiet].row()
    assert (q["messages"], q["delivered"], q["p50"], q["last failure"]) == (0, "n/a", "n/a", "none")


def test_the_command_prints_one_line_per_subscription(configure, log) -> None:
    busy, quiet = log
    configure()

    result = CliRunner().invoke(app, ["subscriptions", "stats"])
    one = CliRunner().invoke(app, ["subscriptions", "stats", str(busy), "--since", "7d"])
    unknown = CliRunner().invoke(app, ["subscriptions", "stats", "424242"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{busy}\thooks.example\t3 messages\tfirst try 33.3%\t")
    assert "delivered 66.7%" in lines[0] and "1 waiting" in lines[0] and "p50 200 ms" in lines[0]
    assert lines[1].startswith(f"{quiet}\tquiet.example\t0 messages") and "none" in lines[1]
    assert "4 messages" in one.output  # msg_d is within seven days
    assert unknown.exit_code == 2 and "no subscription with id 424242" in unknown.output


@pytest.mark.integration
def test_the_retention_run_shows_the_table_in_the_ui(configure, prefect_server, log) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    from flows.retention import retention

    configure()
    state = retention(dry_run=True, return_state=True)
    assert state.is_completed()

    with get_client(sync_client=True) as client:  # this run's table: the server is shared
        (table,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["subscription-health"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    rows = table.data if isinstance(table.data, list) else json.loads(table.data)
    busy, _ = log
    (row,) = [r for r in rows if r["subscription"] == busy]
    assert (row["messages"], row["delivered"], row["waiting for redelivery"]) == (3, "66.7%", 1)

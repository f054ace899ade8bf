"""Due-work sweeps planned for when work falls due, against a real Prefect server with the
project's deployments: one run per period, none when one is planned by then, none for a
paused deployment, and a period that could not be planned is free for the next caller."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun
from sqlalchemy import Engine
from sqlmodel import Session

from booking import sweeps
from booking.enums import ReminderMethod
from booking.models import WorkflowReminder
from booking.service import create_booking
from deployments.names import DELIVER_DUE_WORK
from handoff.runs import PLANNED_TAG
from handoff.sweeps import plan_sweep
from local.stack import LocalPrefect
from tests.factories import booking_request, make_event_type, unique

# Far ahead, so that no worker of another test could ever start these runs.
NOW = datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def reminder_due(engine: Engine, due_at: datetime) -> None:
    with Session(engine) as session:
        booked = create_booking(booking_request(make_event_type(session)), session=session)
        session.add(
            WorkflowReminder(
                dedupe_key=unique("due"),
                booking_id=booked.booking_id,
                method=ReminderMethod.EMAIL,
                recipient="host@hosts.example",
                due_at=due_at,
            )
        )
        session.commit()


def planned_runs(client: SyncPrefectClient) -> list[FlowRun]:
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[PLANNED_TAG])),
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[DELIVER_DUE_WORK.name])),
    )


@pytest.fixture
def client(deployed: LocalPrefect) -> Iterator[SyncPrefectClient]:
    with SyncPrefectClient(deployed.api_url) as client:
        for run in planned_runs(client):  # the other database's case planned the same times
            client.delete_flow_run(run.id)
        yield client
        for run in planned_runs(client):
            client.delete_flow_run(run.id)


def test_a_sweep_is_planned_once_for_the_period_the_earliest_row_falls_due(
    engine: Engine, client: SyncPrefectClient
) -> None:
    assert plan_sweep(engine, client, NOW, period=60) is None  # nothing pending
    reminder_due(engine, NOW + 90 * MINUTE + timedelta(seconds=1))

    first = plan_sweep(engine, client, NOW, period=60)
    again = plan_sweep(engine, client, NOW, period=60)  # planned by then
    reminder_due(engine, NOW + 10 * MINUTE)  # earlier than the planned one
    earlier = plan_sweep(engine, client, NOW, period=60)
    runs = sorted(planned_runs(client), key=lambda run: run.expected_start_time)

    assert first == datetime(2099, 1, 2, 4, 35, tzinfo=UTC)
    assert again is None
    assert earlier == datetime(2099, 1, 2, 3, 15, tzinfo=UTC)
    assert [run.expected_start_time for run in runs] == [earlier, first]
    assert all(run.state is not None and run.state.is_scheduled() for run in runs)


def test_a_sweep_that_just_ran_plans_the_next_a_period_on_at_the_soonest(
    engine: Engine, client: SyncPrefectClient
) -> None:
    reminder_due(engine, NOW - MINUTE)  # failed once, still pending: due since a minute

    planned = plan_sweep(engine, client, NOW, period=60, after_sweep=True)

    assert planned == datetime(2099, 1, 2, 3, 6, tzinfo=UTC)
    assert [run.expected_start_time for run in planned_runs(client)] == [planned]


def test_no_sweep_is_planned_for_a_paused_deployment_nor_kept_for_one_that_failed(
    engine: Engine, client: SyncPrefectClient, deployed: LocalPrefect
) -> None:
    reminder_due(engine, NOW + MINUTE)
    deployed.pause_deployments([DELIVER_DUE_WORK])
    try:
        paused = plan_sweep(engine, client, NOW, period=60)
    finally:
        deployed.pause_deployments([DELIVER_DUE_WORK], paused=False)
    # Paused, nothing is recorded: the next row stored once it is resumed plans its sweep.
    with Session(engine) as session:
        assert sweeps.planned_by(session, NOW, NOW + 2 * MINUTE) is None
    with (
        SyncPrefectClient("http://127.0.0.1:9/api") as unreachable,
        pytest.raises(Exception),  # noqa: B017 - whatever the client raises
    ):
        plan_sweep(engine, unreachable, NOW, period=60)
    resumed = plan_sweep(engine, client, NOW, period=60)

    assert paused is None
    assert resumed == datetime(2099, 1, 2, 3, 6, tzinfo=UTC)  # the period was free again
    assert len(planned_runs(client)) == 1
    with Session(engine) as session:
        assert sweeps.planned_by(session, NOW, NOW + 2 * MINUTE) == resumed

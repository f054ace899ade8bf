"""The bundled post-commit flow, called directly against a real Prefect server."""

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)
from sqlmodel import Session

from booking.service import create_booking
from booking.settings import Settings
from deployments.local import LocalPrefect
from flows.post_commit import booking_post_commit
from tests.factories import booking_request, make_event_type


def committed_booking(settings: Settings):
    from booking.db import make_engine

    engine = make_engine(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        return create_booking(booking_request(make_event_type(session)), session=session)


def child_runs(parent_id):
    with get_client(sync_client=True) as client:
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
            )
        )
        return {client.read_flow(run.flow_id).name: run for run in subflows}


def test_bundled_run_runs_every_concerns_steps_as_its_own_tasks(
    prefect_server: LocalPrefect, settings: Settings
) -> None:
    booking = committed_booking(settings)

    state = booking_post_commit(booking.event_id, booking.uid, return_state=True)

    assert state.is_completed()
    assert child_runs(state.state_details.flow_run_id) == {}  # no subflow runs to pay for
    steps = task_runs(state.state_details.flow_run_id)
    assert {"schedule meeting triggers", "sync booker to host contacts"} <= set(steps)
    assert steps["schedule reminders and no-show checks"].state.is_completed()


def test_bundled_run_fails_when_its_concerns_fail(
    prefect_server: LocalPrefect, settings: Settings
) -> None:
    booking = committed_booking(settings)

    state = booking_post_commit(booking.event_id, "another-booking", return_state=True)

    assert state.is_failed()


def task_runs(flow_run_id):
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name.rsplit("-", 1)[0]: run for run in runs}

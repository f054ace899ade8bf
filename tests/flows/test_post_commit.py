"""The bundled post-commit flow, called directly against a real Prefect server."""

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)
from pytest_httpserver import HTTPServer
from sqlmodel import Session

from booking.service import create_booking
from booking.settings import Settings
from flows.post_commit import booking_post_commit
from local.stack import LocalPrefect
from tests.factories import booking_request, make_event_type, make_subscription
from tests.helpers import settled_task_runs


def committed_booking(
    settings: Settings,
    subscriber_url: str | None = None,
    triggers: tuple[str, ...] = ("BOOKING_CREATED",),
):
    from booking.db import make_engine

    engine = make_engine(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        if subscriber_url:
            make_subscription(session, subscriber_url, list(triggers), event_type_id=event_type.id)
        return create_booking(booking_request(event_type), session=session)


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
    # A subscriber of meeting triggers: the step that stores them runs.
    booking = committed_booking(settings, "http://127.0.0.1:9/meetings", ("MEETING_STARTED",))

    state = booking_post_commit(booking.event_id, booking.uid, return_state=True)

    assert state.is_completed()
    assert child_runs(state.state_details.flow_run_id) == {}  # no subflow runs to pay for
    steps = task_runs(state.state_details.flow_run_id)
    assert set(steps) == {
        "schedule meeting triggers",
        "sync booker to host contacts",
        "schedule reminders and no-show checks",
    }
    assert all(step.state.is_completed() for step in steps.values())


def test_a_step_with_nothing_to_store_is_not_run_and_the_log_says_so(
    prefect_server: LocalPrefect, settings: Settings, caplog
) -> None:
    booking = committed_booking(settings)  # no subscriber takes meeting triggers

    with caplog.at_level("INFO"):
        state = booking_post_commit(booking.event_id, booking.uid, return_state=True)

    assert state.is_completed()
    steps = task_runs(state.state_details.flow_run_id)
    assert set(steps) == {"sync booker to host contacts", "schedule reminders and no-show checks"}
    assert (
        "schedule meeting triggers skipped: no subscriber to MEETING_STARTED or MEETING_ENDED"
        in caplog.messages
    )


def test_bundled_run_fails_when_one_concerns_step_fails_and_the_others_still_run(
    prefect_server: LocalPrefect, settings: Settings, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data("gone elsewhere", status=404)
    booking = committed_booking(
        settings, httpserver.url_for("/hook"), ("BOOKING_CREATED", "MEETING_STARTED")
    )

    state = booking_post_commit(booking.event_id, booking.uid, return_state=True)

    assert state.is_failed()
    steps = task_runs(state.state_details.flow_run_id)
    (delivery,) = [run for name, run in steps.items() if name.startswith("deliver BOOKING_")]
    assert delivery.state.is_failed()  # 404: permanent, not retried
    assert len(httpserver.log) == 1
    for other in ("schedule meeting triggers", "schedule reminders and no-show checks"):
        assert steps[other].state.is_completed()


def task_runs(flow_run_id):
    return {run.name.rsplit("-", 1)[0]: run for run in settled_task_runs(flow_run_id)}

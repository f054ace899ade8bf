"""The outbox relay's steps: dispatch the events whose runs were not confirmed created, and
finish the dispatched ones (record how their runs ended; restart runs that crashed or went
stale), and the post-commit flows' state hook that records an event's outcome as soon as
its run ends. The logic is the handoff's (`handoff/relay.py`); these steps give it
visibility in the UI and a line in the run's log."""

from typing import TYPE_CHECKING

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from booking.db import configured_engine
from booking.settings import get_settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.states import State


class EventsStillPending(RuntimeError):
    """Some claimed events could not be dispatched this pass."""


@task(name="relay pending outbox events", cache_policy=NO_CACHE)
def relay_pending_events() -> dict[str, int]:
    """Claim undispatched outbox events past the grace period and dispatch them."""
    from handoff import PostCommitDispatcher
    from handoff.relay import relay_pending

    settings, engine = get_settings(), configured_engine()
    with PostCommitDispatcher(engine=engine, settings=settings) as dispatcher:
        report = relay_pending(engine=engine, dispatcher=dispatcher, settings=settings)
    get_run_logger().info(
        "claimed %d, dispatched %d, still pending %d",
        report.claimed,
        report.dispatched,
        report.failed,
    )
    if report.failed:
        raise EventsStillPending(f"{report.failed} of {report.claimed} events still pending")
    return {"claimed": report.claimed, "dispatched": report.dispatched}


@task(name="finish dispatched outbox events", cache_policy=NO_CACHE)
def finish_dispatched_events() -> dict[str, int]:
    """Record the outcome of bookings whose runs ended; restart crashed or stale runs."""
    from prefect.client.orchestration import get_client

    from handoff.relay import finish_dispatched

    with get_client(sync_client=True) as client:
        report = finish_dispatched(
            engine=configured_engine(), client=client, settings=get_settings()
        )
    get_run_logger().info(
        "finished %d, restarted %d, still running %d",
        report.finished,
        report.restarted,
        report.waiting,
    )
    return {"finished": report.finished, "restarted": report.restarted}


def record_run_end(flow: object, flow_run: "FlowRun", state: "State") -> None:
    """State hook of the post-commit flows: record the event's outcome when its run ends, so
    `booking outbox status` is true at once (the relay remains the net for runs that die)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    from handoff.relay import record_run_end as record

    event_id = flow_run.parameters.get("event_id")
    if not event_id:
        return
    if state.is_cancelling():
        # Prefect calls the cancellation hooks as a run enters Cancelling (from the UI, say),
        # and the run is Cancelled right after: the event's end is that, not "still running".
        state = Cancelled(message=state.message)
    run = flow_run.model_copy(update={"state": state})  # the final state the hook is for
    with get_client(sync_client=True) as client:
        record(engine=configured_engine(), client=client, event_id=event_id, run=run)


# The hooks every post-commit flow declares (a crashed run is the relay's to restart).
OUTCOME_HOOKS = {
    "on_completion": [record_run_end],
    "on_failure": [record_run_end],
    "on_cancellation": [record_run_end],
}

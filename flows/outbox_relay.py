"""Periodic outbox relay: start the runs of bookings whose dispatch did not get through, and
finish the bookings whose runs ended, restarting runs that crashed or were left behind.

Covers a Prefect API that was down at commit time, a process killed right after commit, and
a worker killed mid-run. Idempotency keys make a repeated dispatch harmless: an existing run
is returned, never duplicated. The "finish crashed runs" automation
(deployments/automations.py) starts this flow as soon as a run crashes.
"""

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from booking.db import engine_for
from booking.settings import get_settings
from deployments.names import OUTBOX_RELAY


class EventsStillPending(RuntimeError):
    """Some claimed events could not be dispatched this pass."""


@task(name="relay pending outbox events", cache_policy=NO_CACHE)
def relay_pending_events() -> dict[str, int]:
    """Claim undispatched outbox events past the grace period and dispatch them."""
    from deployments.dispatch import PostCommitDispatcher
    from deployments.relay import relay_pending

    settings = get_settings()
    engine = engine_for(settings.database_url)
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

    from deployments.relay import finish_dispatched

    settings = get_settings()
    with get_client(sync_client=True) as client:
        report = finish_dispatched(
            engine=engine_for(settings.database_url), client=client, settings=settings
        )
    get_run_logger().info(
        "finished %d, restarted %d, still running %d",
        report.finished,
        report.restarted,
        report.waiting,
    )
    return {"finished": report.finished, "restarted": report.restarted}


@flow(name=OUTBOX_RELAY.flow, log_prints=False)
def outbox_relay() -> list:
    """Dispatch events whose runs were not confirmed created; finish the dispatched ones."""
    return [relay_pending_events.submit(), finish_dispatched_events.submit()]

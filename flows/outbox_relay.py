"""Periodic outbox relay: start the runs of bookings whose dispatch did not get through.

Covers a Prefect API that was down at commit time and a process killed right after commit.
Idempotency keys make a repeat harmless: an existing run is returned, never duplicated.
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


@flow(name=OUTBOX_RELAY.flow, log_prints=False)
def outbox_relay() -> dict[str, int]:
    """Dispatch outbox events whose runs were not confirmed created."""
    return relay_pending_events()

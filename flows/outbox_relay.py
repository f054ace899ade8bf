"""Periodic outbox relay: start the runs of bookings whose dispatch did not get through, and
finish the bookings whose runs ended, restarting runs that crashed or were left behind.

Covers a Prefect API that was down at commit time, a process killed right after commit, and
a worker killed mid-run. Idempotency keys make a repeated dispatch harmless: an existing run
is returned, never duplicated. The "finish crashed runs" automation
(deployments/automations.py) starts this flow as soon as a run crashes.
"""

from prefect import flow
from prefect.futures import PrefectFuture

from deployments.names import OUTBOX_RELAY
from flows.results import NO_RESULTS
from tasks.outbox import finish_dispatched_events, relay_pending_events


@flow(name=OUTBOX_RELAY.flow, log_prints=False, **NO_RESULTS)
def outbox_relay() -> list[PrefectFuture]:
    """Dispatch events whose runs were not confirmed created; finish the dispatched ones."""
    return [relay_pending_events.submit(), finish_dispatched_events.submit()]

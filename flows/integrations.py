"""The integrations concern of a booking's post-commit work.

Mobile push to the host (one task per device), chat sync, Customer.io identify of every
booked host, contact sync and analytics. The steps run concurrently and independently: one
failing provider fails its own step and, in the end, the run, never the other steps. A step
whose provider is not configured, or that this booking does not need, is not run; the run's
log says why. `booking-post-commit` runs these steps beside the other concerns'; this flow
runs them alone, from its own deployment. See docs/architecture.md.
"""

from prefect import flow, unmapped
from prefect.futures import PrefectFuture

from booking.payload import PostCommitPayload
from deployments.names import INTEGRATIONS
from flows.results import NO_RESULTS
from tasks.integrations.steps import host_devices, send_push, steps_for
from tasks.outbox import OUTCOME_HOOKS
from tasks.retry import with_policy
from tasks.snapshot import load_snapshot


def integration_steps(payload: PostCommitPayload) -> list[PrefectFuture]:
    """Submit the concern's steps for one booking: a push per host device, then the rest."""
    pushes = with_policy(send_push).map(host_devices(payload), unmapped(payload))
    return [*pushes, *(with_policy(step).submit(payload) for step in steps_for(payload))]


@flow(
    name=INTEGRATIONS.flow,
    flow_run_name="integrations-{booking_uid}",
    log_prints=False,
    **OUTCOME_HOOKS,
    **NO_RESULTS,
)
def booking_post_commit_integrations(event_id: str, booking_uid: str) -> list[PrefectFuture]:
    """Integrations of one committed booking, from its outbox snapshot.

    The run ends Failed when any step failed after its retries; the other steps still run.
    """
    return integration_steps(load_snapshot(event_id, booking_uid))

"""The post-commit flow: one run per booking, every concern's steps side by side.

One deployment run per booking instead of three: a worker starts (or forks) one process per
run, and each run has a fixed cost in the Prefect server. The concerns are not subflows for
the same reason: a subflow costs a flow run of its own (about nine API calls), where a step
costs one task run. Each concern keeps its own deployment (`webhooks`, `integrations`,
`scheduling`) to re-run it alone for one booking. This run ends Failed if any step failed
after its retries; the others still run.
"""

from prefect import flow
from prefect.futures import PrefectFuture

from deployments.names import POST_COMMIT
from flows.integrations import integration_steps
from flows.results import NO_RESULTS
from flows.scheduling import scheduling_steps
from flows.webhooks import webhook_steps
from tasks.outbox import OUTCOME_HOOKS
from tasks.snapshot import load_snapshot


@flow(
    name=POST_COMMIT.flow,
    flow_run_name="post-commit-{booking_uid}",
    log_prints=False,
    **OUTCOME_HOOKS,
    **NO_RESULTS,
)
def booking_post_commit(event_id: str, booking_uid: str) -> list[PrefectFuture]:
    """Webhooks, integrations and scheduling of one committed booking event, concurrently."""
    payload = load_snapshot(event_id, booking_uid)
    return [*webhook_steps(payload), *integration_steps(payload), *scheduling_steps(payload)]

"""The post-commit parent flow: one run per booking, the three concerns side by side.

One deployment run per booking instead of three: a process worker starts a new Python per
run, so bundling costs one process start, not three. Each concern is a subflow with its own
state in the UI; they run concurrently in threads (with the run context copied, so Prefect
links them to this run), and this run ends Failed if any concern failed.
"""

import contextvars
from concurrent.futures import ThreadPoolExecutor

from prefect import flow
from prefect.states import State

from deployments.names import POST_COMMIT
from flows.integrations import booking_post_commit_integrations
from flows.scheduling import booking_post_commit_scheduling
from flows.webhooks import booking_post_commit_webhooks

CONCERNS = (
    booking_post_commit_webhooks,
    booking_post_commit_integrations,
    booking_post_commit_scheduling,
)


@flow(name=POST_COMMIT.flow, flow_run_name="post-commit-{booking_uid}", log_prints=False)
def booking_post_commit(event_id: str, booking_uid: str) -> list[State]:
    """Webhooks, integrations and scheduling of one committed booking, concurrently."""
    with ThreadPoolExecutor(len(CONCERNS), thread_name_prefix="concern") as pool:
        futures = [
            pool.submit(
                contextvars.copy_context().run, concern, event_id, booking_uid, return_state=True
            )
            for concern in CONCERNS
        ]
        # Returning the states makes this run Failed when any concern failed.
        return [future.result() for future in futures]

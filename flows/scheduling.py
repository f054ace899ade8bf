"""The scheduling concern of a booking's post-commit work.

Plans what happens later, as rows with a due time: the mandatory reminder, workflow
reminders, and no-show checks, in one step. Nothing here waits: `deliver-due-work` sends each
row when it is due. Running it twice for one booking stores nothing twice. The bundled
`booking-post-commit` flow runs the same step directly; this flow re-runs it alone.
See docs/architecture.md.
"""

from prefect import flow
from prefect.futures import PrefectFuture

from deployments.names import SCHEDULING
from tasks.retry import with_policy
from tasks.scheduling.steps import schedule_later_work
from tasks.snapshot import load_snapshot


@flow(name=SCHEDULING.flow, flow_run_name="scheduling-{booking_uid}", log_prints=False)
def booking_post_commit_scheduling(event_id: str, booking_uid: str) -> PrefectFuture:
    """Reminders and no-show checks of one committed booking, from its outbox snapshot."""
    return with_policy(schedule_later_work).submit(load_snapshot(event_id, booking_uid))

"""Periodic delivery of due work: meeting triggers, no-show checks and reminders.

Scheduled every minute by prefect.yaml. Each sweep claims what is due (two overlapping
sweeps never claim one row), delivers it against the booking's current state, and shows how
many items it claimed, sent, skipped and failed. Call it with `now` to sweep as of a time.
"""

from datetime import datetime

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, Failed, State

from booking.models.types import utcnow
from deployments.names import DELIVER_DUE_WORK
from tasks.scheduling.due import claim_due, deliver_due_trigger, send_due_reminder


def _run_name() -> str:
    return f"due-work-{utcnow():%Y%m%d-%H%M%S}"


@flow(name=DELIVER_DUE_WORK.flow, flow_run_name=_run_name, log_prints=False)
def deliver_due_work(now: datetime | None = None) -> State:
    """Deliver every trigger and reminder due at `now` (default: the current time)."""
    now = now or utcnow()
    claimed = claim_due(now)
    futures = [
        deliver_due_trigger.with_options(task_run_name=f"deliver due trigger #{i}").submit(i)
        for i in claimed["triggers"]
    ] + [
        send_due_reminder.with_options(task_run_name=f"send due reminder #{i}").submit(i)
        for i in claimed["reminders"]
    ]
    counts = {"claimed": len(futures), "sent": 0, "skipped": 0, "failed": 0}
    for future in futures:
        future.wait()
        state = future.state
        counts[state.result() if state.is_completed() else "failed"] += 1
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    create_markdown_artifact(
        key="deliver-due-work",
        markdown="| claimed | sent | skipped | failed |\n| --- | --- | --- | --- |\n"
        + "| {claimed} | {sent} | {skipped} | {failed} |".format(**counts),
        description=f"Due work as of {now.isoformat()}",
    )
    return Failed(message=summary) if counts["failed"] else Completed(message=summary)

"""The scheduling concern of a booking's post-commit work.

Plans what happens later, as rows with a due time: the mandatory reminder, workflow
reminders, and no-show checks. Nothing here waits: `deliver-due-work` sends each row when it
is due. Running it twice for one booking stores nothing twice. See docs/architecture.md.
"""

from prefect import flow, tags
from prefect.futures import PrefectFuture

from deployments.names import SCHEDULING, booking_tag
from tasks.scheduling.steps import (
    cancel_original_reminders,
    load_rules,
    schedule_mandatory_reminder,
    schedule_no_show_triggers,
    schedule_workflow_reminders,
)
from tasks.snapshot import load_snapshot


@flow(name=SCHEDULING.flow, flow_run_name="scheduling-{booking_uid}", log_prints=False)
def booking_post_commit_scheduling(event_id: str, booking_uid: str) -> list[PrefectFuture]:
    """Reminders and no-show checks of one committed booking, from its outbox snapshot.

    The run ends Failed when any step failed after its retries; the other steps still run.
    """
    payload = load_snapshot(event_id, booking_uid)
    steps: list[PrefectFuture] = []
    with tags(booking_tag(booking_uid)):
        if payload.is_reschedule:
            steps.append(cancel_original_reminders.submit(payload))
        rules = load_rules.submit(payload)
        steps += [
            schedule_mandatory_reminder.submit(payload, rules),
            schedule_workflow_reminders.submit(payload, rules),
            schedule_no_show_triggers.submit(payload),
        ]
    return steps

"""The scheduling concern of a booking's post-commit work (DESIGN.md section 4).

Plans what happens later, as rows with a due time: the mandatory reminder, workflow
reminders, and no-show checks. Nothing here waits: `deliver-due-work` sends each row when it
is due. Running it twice for one booking stores nothing twice.
"""

from prefect import flow, tags
from prefect.states import State

from deployments.names import SCHEDULING, booking_tag
from flows.outcome import conclude
from tasks.scheduling.steps import (
    cancel_original_reminders,
    load_rules,
    schedule_mandatory_reminder,
    schedule_no_show_triggers,
    schedule_workflow_reminders,
)
from tasks.snapshot import load_snapshot


@flow(name=SCHEDULING.flow, flow_run_name="scheduling-{booking_uid}", log_prints=False)
def booking_post_commit_scheduling(event_id: str, booking_uid: str) -> State:
    """Reminders and no-show checks of one committed booking, from its outbox snapshot."""
    payload = load_snapshot(event_id, booking_uid)
    steps: dict[str, State] = {}
    with tags(booking_tag(booking_uid)):
        if payload.is_reschedule:
            steps["cancel original reminders"] = cancel_original_reminders(
                payload, return_state=True
            )
        rules = load_rules(payload)
        steps["mandatory reminder"] = schedule_mandatory_reminder(payload, rules, return_state=True)
        steps["workflow reminders"] = schedule_workflow_reminders(payload, rules, return_state=True)
        steps["no-show checks"] = schedule_no_show_triggers(payload, return_state=True)
    return conclude("scheduling", booking_uid, steps)

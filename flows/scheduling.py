"""The scheduling concern of a booking event's post-commit work.

Plans what happens later, as rows with a due time: the mandatory reminder, workflow
reminders, and no-show checks, in one step, once the booking is confirmed. Nothing here
waits: `deliver-due-work` sends each row when it is due. A cancellation instead cancels
everything the booking had planned (reminders, meeting triggers, no-show checks) in one
step, and a cancellation or rejection sends its notices (emails to the attendees and the
host, EVENT_CANCELLED workflow steps) at once, in one step that records each message as it
goes. Running it twice for one event stores and sends nothing twice. The bundled
`booking-post-commit` flow runs the same steps; this flow re-runs them alone.
See docs/architecture.md.
"""

from prefect import flow
from prefect.futures import PrefectFuture

from booking.enums import BookingEvent
from booking.payload import PostCommitPayload
from deployments.names import SCHEDULING
from flows.results import NO_RESULTS
from tasks.outbox import OUTCOME_HOOKS
from tasks.retry import with_policy
from tasks.scheduling.steps import cancel_planned_work, schedule_later_work, send_notices
from tasks.snapshot import load_snapshot


def scheduling_steps(payload: PostCommitPayload) -> list[PrefectFuture]:
    """Submit the concern's steps for one booking event."""
    match payload.event:
        case BookingEvent.CANCELLED:
            return [
                with_policy(cancel_planned_work).submit(payload),
                with_policy(send_notices).submit(payload),
            ]
        case BookingEvent.REJECTED:
            return [with_policy(send_notices).submit(payload)]
        case _:
            return [with_policy(schedule_later_work).submit(payload)]


@flow(
    name=SCHEDULING.flow,
    flow_run_name="scheduling-{booking_uid}",
    log_prints=False,
    **OUTCOME_HOOKS,
    **NO_RESULTS,
)
def booking_post_commit_scheduling(event_id: str, booking_uid: str) -> list[PrefectFuture]:
    """Reminders, no-show checks and notices of one committed booking event, from its
    outbox snapshot."""
    return scheduling_steps(load_snapshot(event_id, booking_uid))

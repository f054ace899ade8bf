"""The scheduling concern of a booking event's post-commit work.

Plans what happens later, as rows with a due time: the mandatory reminder, workflow
reminders, and no-show checks, in one step, once the booking is confirmed. Nothing here
waits: `deliver-due-work` sends each row when it is due. A cancellation cancels the
booking's pending reminders instead, and a cancellation or rejection sends its notices
(emails to the attendees and the host, EVENT_CANCELLED workflow steps) at once, one step
per recipient. Running it twice for one event stores and sends nothing twice. The bundled
`booking-post-commit` flow runs the same steps; this flow re-runs them alone.
See docs/architecture.md.
"""

from prefect import flow, unmapped
from prefect.futures import PrefectFuture

from booking.enums import BookingEvent
from booking.payload import PostCommitPayload
from deployments.names import SCHEDULING
from tasks.outbox import OUTCOME_HOOKS
from tasks.retry import with_policy
from tasks.scheduling.steps import (
    cancel_booking_reminders,
    notices_for,
    schedule_later_work,
    send_notice,
)
from tasks.snapshot import load_snapshot


def scheduling_steps(payload: PostCommitPayload) -> list[PrefectFuture]:
    """Submit the concern's steps for one booking event."""
    steps: list[PrefectFuture] = []
    if payload.event == BookingEvent.CANCELLED:
        steps.append(with_policy(cancel_booking_reminders).submit(payload))
    elif payload.event != BookingEvent.REJECTED:
        steps.append(with_policy(schedule_later_work).submit(payload))
    return [*steps, *with_policy(send_notice).map(notices_for(payload), unmapped(payload))]


@flow(
    name=SCHEDULING.flow,
    flow_run_name="scheduling-{booking_uid}",
    log_prints=False,
    **OUTCOME_HOOKS,
)
def booking_post_commit_scheduling(event_id: str, booking_uid: str) -> list[PrefectFuture]:
    """Reminders, no-show checks and notices of one committed booking event, from its
    outbox snapshot."""
    return scheduling_steps(load_snapshot(event_id, booking_uid))

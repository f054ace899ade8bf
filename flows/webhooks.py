"""The webhooks concern of a booking's post-commit work.

Tells subscribers about the booking (BOOKING_REQUESTED, BOOKING_RESCHEDULED or
BOOKING_CREATED), one delivery task per subscriber, and stores the MEETING_STARTED /
MEETING_ENDED triggers that the periodic delivery flow sends later. `booking-post-commit`
runs these steps beside the other concerns'; this flow runs them alone, from its own
deployment, to re-run the concern for one booking. Messages already delivered are not sent
again. See docs/architecture.md.
"""

from prefect import flow
from prefect.futures import PrefectFuture

from booking.payload import PostCommitPayload
from deployments.names import WEBHOOKS
from tasks.delivery.message import booking_messages, booking_trigger
from tasks.retry import with_policy
from tasks.snapshot import load_snapshot
from tasks.webhooks.steps import (
    delete_original_triggers,
    deliver_webhook,
    find_subscribers,
    schedule_meeting_triggers,
)


def webhook_steps(payload: PostCommitPayload) -> list[PrefectFuture]:
    """Submit the concern's steps for one booking, in the order of the sequence diagram."""
    trigger = booking_trigger(payload)
    steps: list[PrefectFuture] = []
    if payload.is_reschedule:
        steps.append(with_policy(delete_original_triggers).submit(payload))
    if payload.confirmed_by_default:
        steps.append(with_policy(schedule_meeting_triggers).submit(payload))
    messages = booking_messages(payload, trigger, find_subscribers(payload, trigger))
    return [*steps, *with_policy(deliver_webhook).map(messages)]


@flow(name=WEBHOOKS.flow, flow_run_name="webhooks-{booking_uid}", log_prints=False)
def booking_post_commit_webhooks(event_id: str, booking_uid: str) -> list[PrefectFuture]:
    """Webhooks of one committed booking, from its outbox snapshot.

    The run ends Failed when any step failed after its retries; the other steps still run.
    """
    return webhook_steps(load_snapshot(event_id, booking_uid))

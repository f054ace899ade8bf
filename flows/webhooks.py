"""The webhooks concern of a booking event's post-commit work.

Tells subscribers what happened to the booking (created, requested, rescheduled, confirmed,
paid, rejected, cancelled; `booking_triggers` says which, in order), one delivery task per
subscriber and message. When the booking became confirmed it stores the MEETING_STARTED /
MEETING_ENDED triggers that the periodic delivery flow sends later; a reschedule drops the
original's (a cancellation's are cancelled by the scheduling concern, with everything else
the booking had planned). `booking-post-commit` runs these steps
beside the other concerns'; this flow runs them alone, from its own deployment, to re-run the
concern for one booking. Messages already delivered are not sent again, and one booking's
messages to one subscriber go out in commit order (tasks/delivery/order.py). See
docs/architecture.md.
"""

from prefect import allow_failure, flow
from prefect.futures import PrefectFuture

from booking.enums import BookingEvent
from booking.payload import PostCommitPayload
from deployments.names import WEBHOOKS
from flows.results import NO_RESULTS
from tasks.delivery.message import booking_messages, booking_triggers
from tasks.outbox import OUTCOME_HOOKS
from tasks.retry import with_policy
from tasks.snapshot import load_snapshot
from tasks.webhooks.steps import (
    booking_subscriptions,
    delete_original_triggers,
    deliver_webhook,
    find_subscribers,
    schedule_meeting_triggers,
    wants_meeting_triggers,
)


def webhook_steps(payload: PostCommitPayload) -> list[PrefectFuture]:
    """Submit the concern's steps for one booking event, in the order of the sequence diagram."""
    steps: list[PrefectFuture] = []
    subscriptions = booking_subscriptions(payload)
    if payload.event == BookingEvent.CREATED and payload.is_reschedule:
        steps.append(with_policy(delete_original_triggers).submit(payload))
    if payload.plans_confirmed_work and wants_meeting_triggers(subscriptions):
        steps.append(with_policy(schedule_meeting_triggers).submit(payload))
    earlier: list[PrefectFuture] = []
    for trigger in booking_triggers(payload):  # each waits for the one before (PAID, CREATED)
        messages = booking_messages(
            payload, trigger, find_subscribers(payload, trigger, subscriptions)
        )
        earlier = with_policy(deliver_webhook).map(
            messages, wait_for=[allow_failure(f) for f in earlier]
        )
        steps.extend(earlier)
    return steps


@flow(
    name=WEBHOOKS.flow,
    flow_run_name="webhooks-{booking_uid}",
    log_prints=False,
    **OUTCOME_HOOKS,
    **NO_RESULTS,
)
def booking_post_commit_webhooks(event_id: str, booking_uid: str) -> list[PrefectFuture]:
    """Webhooks of one committed booking event, from its outbox snapshot.

    The run ends Failed when any step failed after its retries; the other steps still run.
    """
    return webhook_steps(load_snapshot(event_id, booking_uid))

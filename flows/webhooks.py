"""The webhooks concern of a booking's post-commit work (DESIGN.md section 4).

Tells subscribers about the booking (BOOKING_REQUESTED, BOOKING_RESCHEDULED or
BOOKING_CREATED), one delivery task per subscriber, and stores the MEETING_STARTED /
MEETING_ENDED triggers that the periodic delivery flow sends later. Runs as a subflow of
`booking-post-commit`, or alone from its own deployment to re-run this concern for one booking;
messages already delivered are not sent again.
"""

from prefect import flow, tags
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from booking.settings import get_settings
from booking.timeutil import iso_utc
from deployments.names import WEBHOOKS, booking_tag
from flows.outcome import conclude
from tasks.retry import with_policy
from tasks.snapshot import load_snapshot
from tasks.webhooks.body import booking_data, booking_trigger, message_id
from tasks.webhooks.steps import (
    WebhookMessage,
    delete_original_triggers,
    deliver_webhook,
    find_subscribers,
    schedule_meeting_triggers,
)


@flow(name=WEBHOOKS.flow, flow_run_name="webhooks-{booking_uid}", log_prints=False)
def booking_post_commit_webhooks(event_id: str, booking_uid: str) -> State:
    """Webhooks of one committed booking, from its outbox snapshot."""
    settings = get_settings()
    payload = load_snapshot(event_id, booking_uid)
    trigger = booking_trigger(payload)
    steps: dict[str, State] = {}
    with tags(booking_tag(booking_uid), trigger.value):
        if payload.is_reschedule:
            steps["delete original triggers"] = delete_original_triggers(payload, return_state=True)
        if payload.confirmed_by_default:
            steps["schedule meeting triggers"] = schedule_meeting_triggers(
                payload, return_state=True
            )
        subscribers = find_subscribers(payload, trigger)
        deliver = with_policy(
            deliver_webhook,
            retries=settings.webhook_retries,
            base_seconds=settings.webhook_retry_base_seconds,
        )
        data = booking_data(payload, trigger)
        futures = {
            sub: deliver.with_options(
                task_run_name=f"deliver {trigger.value} to {sub.host} #{sub.subscription_id}"
            ).submit(
                WebhookMessage(
                    message_id=message_id(event_id, sub.subscription_id, trigger),
                    subscription_id=sub.subscription_id,
                    trigger=trigger,
                    booking_uid=booking_uid,
                    created_at=iso_utc(payload.created_at),
                    data=data,
                )
            )
            for sub in subscribers
        }
        for sub, future in futures.items():
            future.wait()
            steps[f"deliver to {sub.host} #{sub.subscription_id}"] = future.state

    _summarise(booking_uid, trigger.value, steps)
    return conclude("webhooks", booking_uid, steps)


def _summarise(booking_uid: str, trigger: str, steps: dict[str, State]) -> None:
    rows = []
    for name, state in steps.items():
        result = state.result(raise_on_failure=False) if state.is_completed() else None
        outcome = getattr(result, "outcome", "done") if state.is_completed() else "failed"
        detail = (state.message or "")[:120].replace("|", "/")
        rows.append(f"| {name} | {state.type.value} | {outcome} | {detail} |")
    create_markdown_artifact(
        key=f"webhooks-{booking_uid.lower()}",
        markdown="\n".join(
            [
                f"### {trigger} for booking {booking_uid}",
                "",
                "| step | state | outcome | detail |",
                "| --- | --- | --- | --- |",
                *rows,
            ]
        ),
        description=f"Webhook deliveries of booking {booking_uid}",
    )

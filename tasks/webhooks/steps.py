"""The steps of the webhooks flow, one Prefect task each (delivery: one per subscriber), and
the lookup of subscribers, a read that is not a step of its own."""

from datetime import datetime, timedelta

from prefect import get_run_logger, task
from prefect.runtime import task_run
from prefect.states import Completed, State

from booking.db import configured_engine, transaction
from booking.enums import MEETING_TRIGGERS, WebhookTrigger
from booking.models import WebhookSubscription
from booking.payload import PostCommitPayload
from booking.settings import get_settings
from booking.timeutil import utcnow
from tasks.delivery import store
from tasks.delivery.message import Subscriber, WebhookMessage, url_host
from tasks.delivery.order import waits_for
from tasks.delivery.send import DeliveryReport, send_webhook
from tasks.duework import plan_next_sweep
from tasks.retry import is_transient, step_policy


def booking_subscriptions(payload: PostCommitPayload) -> list[WebhookSubscription]:
    """The active subscriptions of the booking's hosts, event type or team, read once for
    every trigger the run looks at."""
    with transaction() as session:
        return store.subscriptions_in_scope(session, payload)


def find_subscribers(
    payload: PostCommitPayload, trigger: WebhookTrigger, subscriptions: list[WebhookSubscription]
) -> list[Subscriber]:
    """Which of the booking's `subscriptions` take this event."""
    subs = store.choose_subscriptions(subscriptions, [trigger])
    found = [Subscriber(s.id, url_host(s.subscriber_url)) for s in subs]  # type: ignore[arg-type]
    if not found:
        get_run_logger().info("no %s subscribers for booking %s", trigger, payload.booking_uid)
    return found


def wants_meeting_triggers(subscriptions: list[WebhookSubscription]) -> bool:
    """Whether one of the booking's `subscriptions` takes MEETING_STARTED or MEETING_ENDED.
    Without one the step that stores them is not run: it would store nothing, and a task run
    costs the Prefect server three state events. The run's log says it was skipped."""
    wanted = bool(store.choose_subscriptions(subscriptions, MEETING_TRIGGERS))
    if not wanted:
        get_run_logger().info(
            "schedule meeting triggers skipped: no subscriber to %s",
            " or ".join(MEETING_TRIGGERS),
        )
    return wanted


@task(name="delete original booking's scheduled triggers", **step_policy("database"))
def delete_original_triggers(payload: PostCommitPayload) -> int:
    """On a reschedule, drop the meeting triggers still pending for the replaced booking."""
    assert payload.reschedule is not None
    with transaction() as session:
        deleted = store.delete_pending_triggers(session, payload.reschedule.original_booking_id)
    get_run_logger().info(
        "deleted %d pending triggers of %s (rescheduled to %s)",
        deleted,
        payload.reschedule.original_uid,
        payload.booking_uid,
    )
    return deleted


@task(name="schedule meeting triggers", **step_policy("database"))
def schedule_meeting_triggers(payload: PostCommitPayload) -> int:
    """Store MEETING_STARTED (due at start) and MEETING_ENDED (due at end) per subscriber."""
    due = {WebhookTrigger.MEETING_STARTED: payload.start, WebhookTrigger.MEETING_ENDED: payload.end}
    with transaction() as session:
        stored = store.store_triggers(
            session, payload, MEETING_TRIGGERS, lambda _sub, trigger: due[trigger]
        )
    if stored:
        plan_next_sweep()
    get_run_logger().info("stored %d meeting triggers for booking %s", stored, payload.booking_uid)
    return stored


@task(
    name="deliver webhook",
    task_run_name="deliver {message.trigger} to {message.host} #{message.subscription_id}",
    **step_policy("webhook"),
)
def deliver_webhook(message: WebhookMessage) -> State[DeliveryReport | None]:
    """POST one signed message to one subscriber and log the attempt.

    A subscriber still failing after the last retry does not lose the message: it is handed
    to the due-work sweep, which sends it again for about a day (same `webhook-id` and
    body), and this step ends "Redelivery scheduled" without holding a worker meanwhile.
    A message whose booking has an earlier message to this subscriber still outstanding is
    handed to the sweep too, and this step ends "Waiting for an earlier message".
    """
    settings = get_settings()
    attempt = task_run.get_run_count() or 1
    with transaction() as session:
        if reason := waits_for(session, message):
            store.add_redelivery_once(session, message, utcnow())
    if reason:
        get_run_logger().info("%s to %s waits: %s", message.trigger, message.host, reason)
        release_if_settled_meanwhile(message)
        return Completed(
            name="Waiting for an earlier message", message=f"{reason}; {message.message_id}"
        )
    try:
        report = send_webhook(message, attempt_no=attempt)
    except Exception as exc:
        delays = settings.webhook_redelivery_delays_seconds
        if attempt <= settings.webhook_retries or not is_transient(exc) or not delays:
            raise
        due_at = utcnow() + timedelta(seconds=delays[0])
        with transaction() as session:
            store.add_redelivery_once(session, message, due_at)
        plan_next_sweep()
        get_run_logger().warning(
            "%s still failing after %d attempts; redelivery at %s",
            message.host,
            attempt,
            f"{due_at:%H:%M} UTC",
        )
        return Completed(
            name="Redelivery scheduled",
            message=f"{type(exc).__name__}; redelivery at {due_at:%Y-%m-%d %H:%M} UTC, "
            f"{message.message_id}",
            data=None,
        )
    status = f", HTTP {report.status_code}" if report.status_code else ""
    # The outcome and webhook-id show on the task run in the UI.
    return Completed(message=f"{report.outcome}{status}, {message.message_id}", data=report)


def release_if_settled_meanwhile(message: WebhookMessage) -> bool:
    """A message was just held back: if what it waited for has settled since this step
    looked, start the due-work sweep for it now. The earlier event's end hook looks for
    held messages when that event ends; had it looked between this step's check and its
    insert, it found nothing, and the message would wait for the next scheduled sweep.
    Returns whether a sweep was started."""
    from prefect.client.orchestration import get_client

    from handoff.relay import release_held

    with transaction() as session:
        if waits_for(session, message) is not None:
            return False  # still waiting: whatever it waits for releases it when it settles
    assert message.committed_at is not None  # only ordered messages are ever held
    just_before = datetime.fromisoformat(message.committed_at) - timedelta(microseconds=1)
    with get_client(sync_client=True) as client:
        return release_held(
            configured_engine(),
            client,
            {message.booking_uid: just_before},
            because=f"held {message.message_id}, nothing earlier outstanding",
        )

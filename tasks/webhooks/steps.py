"""The steps of the webhooks flow, one Prefect task each (delivery: one per subscriber)."""

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run

from booking.db import configured_engine, session_scope
from booking.enums import MEETING_TRIGGERS, WebhookTrigger
from booking.payload import PostCommitPayload
from tasks.delivery import store
from tasks.delivery.message import Subscriber, WebhookMessage, url_host
from tasks.delivery.send import DeliveryReport, send_webhook
from tasks.retry import step_policy


@task(name="find subscribers", **step_policy("database"))
def find_subscribers(payload: PostCommitPayload, trigger: WebhookTrigger) -> list[Subscriber]:
    """Active subscriptions to this event for the booking's hosts, event type or team."""
    with session_scope(configured_engine()) as session:
        subs = store.find_subscriptions(session, payload, [trigger])
        found = [Subscriber(s.id, url_host(s.subscriber_url)) for s in subs]  # type: ignore[arg-type]
    if not found:
        get_run_logger().info("no %s subscribers for booking %s", trigger, payload.booking_uid)
    return found


@task(name="delete original booking's scheduled triggers", **step_policy("database"))
def delete_original_triggers(payload: PostCommitPayload) -> int:
    """On a reschedule, drop the meeting triggers still pending for the replaced booking."""
    assert payload.reschedule is not None
    with session_scope(configured_engine()) as session:
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
    with session_scope(configured_engine()) as session:
        stored = store.store_triggers(
            session, payload, MEETING_TRIGGERS, lambda _sub, trigger: due[trigger]
        )
    get_run_logger().info("stored %d meeting triggers for booking %s", stored, payload.booking_uid)
    return stored


@task(
    name="deliver webhook",
    task_run_name="deliver {message.trigger} to {message.host} #{message.subscription_id}",
    **step_policy("webhook"),
)
def deliver_webhook(message: WebhookMessage) -> DeliveryReport:
    """POST one signed message to one subscriber and log the attempt."""
    return send_webhook(message, attempt_no=task_run.get_run_count() or 1)


@task(name="summarise deliveries", cache_policy=NO_CACHE)
def summarise_deliveries(
    messages: list[WebhookMessage], reports: list[DeliveryReport | BaseException]
) -> None:
    """A table of this run's messages in the UI: subscriber, `webhook-id`, how each ended."""
    rows: list[dict[str, Any]] = [
        {
            "subscriber": f"{message.host} #{message.subscription_id}",
            "webhook-id": message.message_id,
            "outcome": report.outcome if isinstance(report, DeliveryReport) else "failed",
            "status": report.status_code if isinstance(report, DeliveryReport) else None,
            "detail": "" if isinstance(report, DeliveryReport) else str(report)[:200],
        }
        for message, report in zip(messages, reports, strict=True)
    ]
    if rows:
        booking_uid = messages[0].booking_uid
        create_table_artifact(
            key=f"webhooks-{booking_uid.lower()}",
            table=rows,
            description=f"{messages[0].trigger} deliveries of booking {booking_uid}",
        )

"""The steps of the webhooks flow, one Prefect task each."""

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from prefect import get_run_logger, task
from prefect.runtime import task_run
from pydantic import BaseModel

from booking.db import configured_engine, session_scope
from booking.enums import WebhookTrigger
from booking.models import WebhookDelivery, WebhookSubscription
from booking.models.types import utcnow
from booking.payload import PostCommitPayload
from booking.settings import get_settings
from tasks.clients import http_client
from tasks.retry import DB_STEP, PROVIDER_STEP, TransientHTTPError
from tasks.webhooks import store
from tasks.webhooks.body import TemplateRejected, render_body
from tasks.webhooks.guard import RefusedURL, check_url
from tasks.webhooks.http import Attempt, post
from tasks.webhooks.signing import signed_headers

MEETING_TRIGGERS = (WebhookTrigger.MEETING_STARTED, WebhookTrigger.MEETING_ENDED)


class DeliveryRejected(Exception):
    """The subscriber answered with a status a retry cannot fix (3xx, 4xx other than 410/429)."""


class WebhookMessage(BaseModel):
    """One message for one subscriber; `message_id` is the `webhook-id` of every attempt."""

    message_id: str
    subscription_id: int
    trigger: WebhookTrigger
    booking_uid: str
    created_at: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Subscriber:
    subscription_id: int
    host: str


@dataclass(frozen=True)
class DeliveryReport:
    subscription_id: int
    host: str
    outcome: Literal["delivered", "already-delivered", "deactivated", "inactive"]
    status_code: int | None
    attempts: int


def url_host(url: str) -> str:
    """What logs and the UI show of a subscriber URL: its host, never its path or query."""
    return urlsplit(url).hostname or "invalid-url"


@task(name="find subscribers", **DB_STEP)
def find_subscribers(payload: PostCommitPayload, trigger: WebhookTrigger) -> list[Subscriber]:
    """Active subscriptions to this event for the booking's hosts, event type or team."""
    with session_scope(configured_engine()) as session:
        subs = store.find_subscriptions(session, payload, [trigger])
        found = [Subscriber(s.id, url_host(s.subscriber_url)) for s in subs]  # type: ignore[arg-type]
    if not found:
        get_run_logger().info("no %s subscribers for booking %s", trigger, payload.booking_uid)
    return found


@task(name="delete original booking's scheduled triggers", **DB_STEP)
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


@task(name="schedule meeting triggers", **DB_STEP)
def schedule_meeting_triggers(payload: PostCommitPayload) -> int:
    """Store MEETING_STARTED (due at start) and MEETING_ENDED (due at end) per subscriber."""
    due = {WebhookTrigger.MEETING_STARTED: payload.start, WebhookTrigger.MEETING_ENDED: payload.end}
    with session_scope(configured_engine()) as session:
        stored = store.store_triggers(
            session, payload, MEETING_TRIGGERS, lambda _sub, trigger: due[trigger]
        )
    get_run_logger().info("stored %d meeting triggers for booking %s", stored, payload.booking_uid)
    return stored


@task(name="deliver webhook", **PROVIDER_STEP)
def deliver_webhook(message: WebhookMessage) -> DeliveryReport:
    """POST one signed message to one subscriber and log the attempt."""
    return send_webhook(message, attempt_no=task_run.get_run_count() or 1)


def send_webhook(message: WebhookMessage, *, attempt_no: int) -> DeliveryReport:
    """One delivery attempt, logged; raises what decides whether a retry can help."""
    settings = get_settings()
    with session_scope(configured_engine()) as session:
        sub = session.get(WebhookSubscription, message.subscription_id)
        if sub is None or not sub.active:
            get_run_logger().info("subscription %s is no longer active", message.subscription_id)
            return DeliveryReport(message.subscription_id, "-", "inactive", None, attempt_no)
        url, secret, template = sub.subscriber_url, sub.secret, sub.payload_template
        if store.was_delivered(session, message.message_id):
            get_run_logger().info("%s already delivered to %s", message.trigger, url_host(url))
            return DeliveryReport(sub.id, url_host(url), "already-delivered", None, attempt_no)  # type: ignore[arg-type]
        previous = store.last_attempt(session, message.message_id)
    host = url_host(url)
    _honour_retry_after(previous, settings.webhook_retry_after_cap_seconds)

    try:
        check_url(url, settings.webhook_allowed_networks)
        body, content_type = render_body(
            template, message.trigger, message.created_at, message.data
        )
    except (RefusedURL, TemplateRejected) as exc:
        _record(message, attempt_no, Attempt(None, 0, str(exc), None, None))
        raise
    headers = signed_headers(
        message_id=message.message_id,
        timestamp=int(time.time()),
        body=body,
        secret=secret,
        content_type=content_type,
    )
    attempt, transport_error = post(
        http_client(),
        url,
        body=body,
        headers=headers,
        total_timeout=settings.webhook_timeout_seconds,
        excerpt_bytes=settings.webhook_response_excerpt_bytes,
    )
    _record(message, attempt_no, attempt)
    if transport_error is not None:
        raise transport_error
    status = attempt.status_code or 0
    if attempt.ok:
        return DeliveryReport(message.subscription_id, host, "delivered", status, attempt_no)
    if status == 410:
        with session_scope(configured_engine()) as session:
            store.deactivate(session, message.subscription_id, "subscriber answered 410 Gone")
        get_run_logger().warning("%s answered 410 Gone: subscription deactivated", host)
        return DeliveryReport(message.subscription_id, host, "deactivated", status, attempt_no)
    if status == 429 or status >= 500:
        raise TransientHTTPError(status, attempt.retry_after)
    raise DeliveryRejected(f"{host} answered {attempt.error}; not retried")


def _honour_retry_after(previous: WebhookDelivery | None, cap: float) -> None:
    """Do not send before the time the subscriber's last `Retry-After` asked for (capped)."""
    if previous is None or previous.extra.get("retry_after") is None:
        return
    not_before = previous.created_at + timedelta(seconds=min(previous.extra["retry_after"], cap))
    wait = (not_before - utcnow()).total_seconds()
    if wait > 0:
        time.sleep(wait)


def _record(message: WebhookMessage, attempt_no: int, attempt: Attempt) -> None:
    with session_scope(configured_engine()) as session:
        session.add(
            WebhookDelivery(
                subscription_id=message.subscription_id,
                booking_uid=message.booking_uid,
                trigger_event=message.trigger,
                message_id=message.message_id,
                attempt=attempt_no,
                status_code=attempt.status_code,
                duration_ms=attempt.duration_ms,
                error=attempt.error,
                response_excerpt=attempt.excerpt,
                extra={"retry_after": attempt.retry_after} if attempt.retry_after else {},
            )
        )

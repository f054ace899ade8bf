"""One signed delivery attempt of one message, recorded in the delivery log.

The webhooks flow calls it from a retried task; the due-work sweep calls it for scheduled
triggers. It raises what decides whether another attempt can help.
"""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from prefect import get_run_logger

from booking.db import transaction
from booking.models import WebhookDelivery, WebhookSubscription
from booking.models.webhooks import valid_previous_secrets
from booking.settings import get_settings
from booking.timeutil import utcnow
from tasks.caps import provider_slot
from tasks.clients import webhook_client
from tasks.delivery import store
from tasks.delivery.body import render_body
from tasks.delivery.guard import check_url
from tasks.delivery.http import Attempt, post
from tasks.delivery.message import WebhookMessage
from tasks.delivery.rate import is_late, wait_for_rate
from tasks.delivery.signing import signed_headers
from tasks.errors import PermanentError, TransientError

Outcome = Literal["delivered", "already-delivered", "deactivated", "inactive"]


@dataclass(frozen=True)
class DeliveryReport:
    subscription_id: int
    host: str
    outcome: Outcome
    status_code: int | None
    attempts: int

    @property
    def sent(self) -> bool:
        """The subscriber has the message: delivered now, or by an earlier attempt."""
        return self.outcome in ("delivered", "already-delivered")


def send_webhook(
    message: WebhookMessage, *, attempt_no: int, resend: bool = False
) -> DeliveryReport:
    """POST the message once, unless it was delivered already (and `resend` is not asked
    for, as an operator's replay of one message does) or the subscription is off."""
    settings = get_settings()
    with transaction() as session:
        sub = session.get(WebhookSubscription, message.subscription_id)
        if sub is None or not sub.active:
            get_run_logger().info("subscription %s is no longer active", message.subscription_id)
            return _report(message, "inactive", None, attempt_no)
        url, secret, template = sub.subscriber_url, sub.secret, sub.payload_template
        rate = sub.rate_per_second
        keys_still_valid = valid_previous_secrets(sub, utcnow())
        if not resend and store.was_delivered(session, message.message_id):
            get_run_logger().info("%s already delivered to %s", message.trigger, message.host)
            return _report(message, "already-delivered", None, attempt_no)
        previous = store.last_attempt(session, message.message_id)
    with _logged_if_not_sent(message, attempt_no, record=not resend):
        _honour_retry_after(previous, settings.webhook_retry_after_cap_seconds)
        pinned = check_url(url, settings.webhook_allowed_networks)
        body, content_type = render_body(
            template, message.trigger, message.created_at, message.data
        )
    with webhook_client(pinned) as client, contextlib.ExitStack() as held:
        with _logged_if_not_sent(message, attempt_no, record=not resend):
            # Last before the request, so little happens between the slot and the send, and
            # the signature's timestamp is fresh.
            held.enter_context(_send_slot(message.subscription_id, rate))
            headers = signed_headers(
                message_id=message.message_id,
                timestamp=int(time.time()),
                body=body,
                secret=secret,
                content_type=content_type,
                previous=keys_still_valid,
            )
        attempt, transport_error = post(
            client,
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
        return _report(message, "delivered", status, attempt_no)
    if status == 410:
        with transaction() as session:
            store.deactivate(session, message.subscription_id, "subscriber answered 410 Gone")
        get_run_logger().warning("%s answered 410 Gone: subscription deactivated", message.host)
        return _report(message, "deactivated", status, attempt_no)
    if status == 429 or status >= 500:
        raise TransientError(f"{message.host} answered {status}", retry_after=attempt.retry_after)
    raise PermanentError(f"{message.host} answered {attempt.error}; not retried")


@contextlib.contextmanager
def _send_slot(subscription_id: int, rate: float | None) -> Iterator[None]:
    """The subscription's rate slot, then one of the subscribers' shared cap (`webhooks`)
    for the request only: a message waiting for its rate or a Retry-After holds none of the
    cap. A message the full cap kept past its rate slot gives the cap's slot back and takes
    a new rate slot, so waiting for the cap never crowds the subscriber's rate."""
    while True:
        slot = wait_for_rate(subscription_id, rate)
        with provider_slot("webhooks"):
            if slot is None or rate is None or not is_late(slot, rate):
                yield
                return


def _report(
    message: WebhookMessage, outcome: Outcome, status: int | None, attempt_no: int
) -> DeliveryReport:
    return DeliveryReport(message.subscription_id, message.host, outcome, status, attempt_no)


@contextlib.contextmanager
def _logged_if_not_sent(
    message: WebhookMessage, attempt_no: int, *, record: bool
) -> Iterator[None]:
    """Whatever fails before the request (a refused URL, a rejected template, an unresolvable
    host, a bug) is logged as an attempt all the same, so the message shows as failed in
    `deliveries list --failed` and `deliveries recover` finds it. An operator's resend that
    was refused (`record=False`) changes nothing: the message's log stays as it was."""
    try:
        yield
    except Exception as exc:
        if record:
            _record(message, attempt_no, Attempt(None, 0, _not_sent(exc), None, None))
        raise


def _not_sent(exc: Exception) -> str:
    """The attempt log's error for a message that failed before it was sent."""
    if isinstance(exc, PermanentError):  # says itself what was refused
        return str(exc)
    return f"not sent: {type(exc).__name__}: {exc}"[:500]


def _honour_retry_after(previous: WebhookDelivery | None, cap: float) -> None:
    """Do not send before the time the subscriber's last `Retry-After` asked for (capped)."""
    if previous is None or previous.extra.get("retry_after") is None:
        return
    not_before = previous.created_at + timedelta(seconds=min(previous.extra["retry_after"], cap))
    wait = (not_before - utcnow()).total_seconds()
    if wait > 0:
        time.sleep(wait)


def _record(message: WebhookMessage, attempt_no: int, attempt: Attempt) -> None:
    with transaction() as session:
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

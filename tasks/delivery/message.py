"""Webhook messages, pure: which event a booking sends, and one message per subscriber."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from booking.enums import BookingEvent, WebhookTrigger
from booking.payload import PostCommitPayload
from booking.timeutil import iso_utc
from tasks.delivery.body import booking_data

MESSAGE_NAMESPACE = uuid.UUID("5b0c4f3e-7d4a-4a53-9a43-2f3f0e5c9b11")


@dataclass(frozen=True)
class Subscriber:
    subscription_id: int
    host: str


class WebhookMessage(BaseModel):
    """One message for one subscriber; `message_id` is the `webhook-id` of every attempt.

    `host` names the subscriber in logs and in the UI: never a URL's path or query.
    """

    message_id: str
    subscription_id: int
    host: str
    trigger: WebhookTrigger
    booking_id: int
    booking_uid: str
    created_at: str
    data: dict[str, Any]
    # A booking event's message: its place among the booking's messages to this subscriber
    # (the event's commit time, then its position in the event). None for scheduled triggers.
    event_id: str | None = None
    committed_at: str | None = None
    position: int = 0


def url_host(url: str) -> str:
    """What logs and the UI show of a subscriber URL: its host, never its path or query."""
    return urlsplit(url).hostname or "invalid-url"


def message_id(source: str, subscription_id: int, trigger: WebhookTrigger) -> str:
    """`webhook-id`: the same for every attempt and re-run of one message, so it dedupes."""
    return f"msg_{uuid.uuid5(MESSAGE_NAMESPACE, f'{source}:{subscription_id}:{trigger}').hex}"


def trigger_message(
    *,
    trigger_id: int,
    subscription_id: int,
    host: str,
    trigger: WebhookTrigger,
    booking_id: int,
    booking_uid: str,
    due_at: datetime,
    data: dict[str, Any],
) -> WebhookMessage:
    """The message of a trigger stored for later (meeting started/ended, no-show)."""
    return WebhookMessage(
        message_id=message_id(f"trigger-{trigger_id}", subscription_id, trigger),
        subscription_id=subscription_id,
        host=host,
        trigger=trigger,
        booking_id=booking_id,
        booking_uid=booking_uid,
        created_at=iso_utc(due_at),
        data=data,
    )


def booking_triggers(payload: PostCommitPayload) -> list[WebhookTrigger]:
    """What subscribers are told of a booking event, in the order they are told it.

    Created: PAYMENT_INITIATED while a paid booking awaits payment, REQUESTED while it awaits
    the host's confirmation, else RESCHEDULED or CREATED. Confirmed: CREATED. Paid: PAID, then
    CREATED (or REQUESTED while the host still confirms). Rejected and cancelled: their own.
    """
    match payload.event:
        case BookingEvent.CREATED:
            if payload.needs_payment:
                return [WebhookTrigger.BOOKING_PAYMENT_INITIATED]
            if not payload.confirmed:
                return [WebhookTrigger.BOOKING_REQUESTED]
            if payload.is_reschedule:
                return [WebhookTrigger.BOOKING_RESCHEDULED]
            return [WebhookTrigger.BOOKING_CREATED]
        case BookingEvent.CONFIRMED:
            return [WebhookTrigger.BOOKING_CREATED]
        case BookingEvent.PAID:
            then = payload.confirmed and WebhookTrigger.BOOKING_CREATED
            return [WebhookTrigger.BOOKING_PAID, then or WebhookTrigger.BOOKING_REQUESTED]
        case BookingEvent.REJECTED:
            return [WebhookTrigger.BOOKING_REJECTED]
        case BookingEvent.CANCELLED:
            return [WebhookTrigger.BOOKING_CANCELLED]


def booking_messages(
    payload: PostCommitPayload, trigger: WebhookTrigger, subscribers: list[Subscriber]
) -> list[WebhookMessage]:
    """The booking's event for each subscriber, with a `webhook-id` stable across re-runs."""
    data = booking_data(payload, trigger)
    triggers = booking_triggers(payload)
    position = triggers.index(trigger) if trigger in triggers else 0
    committed_at = iso_utc(payload.committed_at) if payload.committed_at else None
    return [
        WebhookMessage(
            message_id=message_id(payload.event_id, sub.subscription_id, trigger),
            subscription_id=sub.subscription_id,
            host=sub.host,
            trigger=trigger,
            booking_id=payload.booking_id,
            booking_uid=payload.booking_uid,
            created_at=iso_utc(payload.created_at),
            data=data,
            event_id=payload.event_id,
            committed_at=committed_at,
            position=position,
        )
        for sub in subscribers
    ]

"""One booking's messages to one subscriber go out in the order their events committed.

A message waits while an earlier event of its booking is still running (its run has not
ended), or while an earlier message of its booking to the same subscription is waiting for
redelivery. Waiting holds no worker: the message becomes a due row that the due-work sweep
sends once nothing earlier is outstanding. An operator's replay of one message sends at once.
"""

from datetime import datetime

from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from booking.enums import WorkStatus
from booking.models import OutboxEvent, WebhookRedelivery
from tasks.delivery.message import WebhookMessage


def waits_for(session: Session, message: WebhookMessage) -> str | None:
    """Why `message` must wait for an earlier one of its booking, or None to send it now."""
    if message.committed_at is None:  # a scheduled trigger, or an event from before ordering
        return None
    committed_at = datetime.fromisoformat(message.committed_at)
    running = session.exec(
        select(OutboxEvent.id)
        .where(
            OutboxEvent.booking_uid == message.booking_uid,
            col(OutboxEvent.created_at) < committed_at,
            col(OutboxEvent.finished_at).is_(None),
        )
        .limit(1)
    ).first()
    if running is not None:
        return f"an earlier event of booking {message.booking_uid} is still running"
    pending = session.exec(
        select(WebhookRedelivery.message_id)
        .where(
            WebhookRedelivery.booking_id == message.booking_id,
            WebhookRedelivery.subscription_id == message.subscription_id,
            WebhookRedelivery.status == WorkStatus.PENDING,
            WebhookRedelivery.message_id != message.message_id,
            tuple_(col(WebhookRedelivery.committed_at), col(WebhookRedelivery.position))
            < tuple_(committed_at, message.position),
        )
        .limit(1)
    ).first()
    if pending is not None:
        return f"earlier message {pending} to this subscriber awaits redelivery"
    return None

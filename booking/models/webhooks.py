"""Webhook subscriptions, triggers due later, and the log of every delivery attempt."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, event
from sqlmodel import Field, SQLModel

from booking.enums import TimeUnit, WebhookTrigger
from booking.models.types import UTCDateTime, enum_type
from booking.models.work import DueWork
from booking.templates import check_template
from booking.timeutil import utcnow


class WebhookSubscription(SQLModel, table=True):
    """A subscriber URL scoped to a user, an event type or a team."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    event_type_id: int | None = Field(default=None, foreign_key="eventtype.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    subscriber_url: str
    secret: str | None = None
    # Keys a rotation keeps valid for a while, newest first: [{"secret", "expires_at"}]
    # (ISO 8601, UTC). Each message is signed with `secret` and with each one not yet expired.
    previous_secrets: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    active: bool = Field(default=True, index=True)
    triggers: list[WebhookTrigger] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    payload_template: str | None = Field(default=None, sa_column=Column(Text))
    # At most this many messages a second to it, across every worker (tasks/delivery/rate.py);
    # None: no limit but the webhooks tag's.
    rate_per_second: float | None = None
    # Under a rate: when its next message may go, in seconds since the epoch.
    next_send_at: float | None = None
    time: int | None = None  # offset of a no-show trigger
    time_unit: TimeUnit | None = Field(default=None, sa_type=enum_type(TimeUnit))
    deactivated_reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class ScheduledTrigger(DueWork, table=True):
    """A webhook to send at `due_at` (meeting started/ended, no-show checks)."""

    __table_args__ = (Index("ix_scheduledtrigger_status_due", "status", "due_at"),)

    subscription_id: int = Field(foreign_key="webhooksubscription.id", index=True)
    trigger_event: WebhookTrigger = Field(sa_type=enum_type(WebhookTrigger))


class WebhookRedelivery(DueWork, table=True):
    """A message that failed its in-task retries, sent again by the due-work sweep on a long
    backoff (`webhook_redelivery_delays_seconds`) with its original `webhook-id` and body."""

    __table_args__ = (
        Index("ix_webhookredelivery_status_due", "status", "due_at"),
        Index(
            "ix_webhookredelivery_order", "booking_id", "subscription_id", "status", "committed_at"
        ),
    )

    subscription_id: int = Field(foreign_key="webhooksubscription.id", index=True)
    message_id: str = Field(index=True)
    message: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Its place among the booking's messages to this subscription (see tasks/delivery/order.py):
    # the commit time of its booking event, then its position within that event.
    committed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    position: int = 0


class WebhookDelivery(SQLModel, table=True):
    """One HTTP attempt to deliver one webhook message to one subscriber."""

    # A subscription's attempts in a window (`booking subscriptions stats`).
    __table_args__ = (
        Index("ix_webhookdelivery_subscription_created", "subscription_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhooksubscription.id", index=True)
    booking_uid: str = Field(index=True)
    trigger_event: WebhookTrigger = Field(sa_type=enum_type(WebhookTrigger))
    message_id: str = Field(index=True)  # `webhook-id`, stable across retries
    attempt: int
    status_code: int | None = None
    duration_ms: int
    error: str | None = None
    response_excerpt: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), index=True)
    )


@event.listens_for(WebhookSubscription, "before_insert")
@event.listens_for(WebhookSubscription, "before_update")
def _check_payload_template(_mapper: Any, _connection: Any, sub: WebhookSubscription) -> None:
    """A template that could never render is refused when it is saved, not at delivery."""
    if sub.payload_template is not None:
        check_template(sub.payload_template, what="payload template")


MAX_SIGNING_KEYS = 5  # the secret and the previous ones still valid, at most


def valid_previous(sub: WebhookSubscription, now: datetime) -> list[dict[str, str]]:
    """The subscription's previous secrets not yet expired at `now`, newest first, as many
    as may sign beside its secret."""
    return [
        kept for kept in sub.previous_secrets if datetime.fromisoformat(kept["expires_at"]) > now
    ][: MAX_SIGNING_KEYS - 1]


def valid_previous_secrets(sub: WebhookSubscription, now: datetime) -> list[str]:
    return [kept["secret"] for kept in valid_previous(sub, now)]

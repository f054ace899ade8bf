"""Database side of webhook delivery: subscriptions, scheduled triggers, the delivery log."""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, col, delete, func, or_, select, update

from booking.db import insert_once
from booking.enums import WebhookTrigger, WorkStatus
from booking.models import (
    ScheduledTrigger,
    WebhookDelivery,
    WebhookRedelivery,
    WebhookSubscription,
)
from booking.models.work import DueWork
from booking.payload import PostCommitPayload
from booking.timeutil import utcnow

if TYPE_CHECKING:
    from tasks.delivery.message import WebhookMessage


def find_subscriptions(
    session: Session, payload: PostCommitPayload, triggers: Iterable[WebhookTrigger]
) -> list[WebhookSubscription]:
    """Active subscriptions to any of `triggers` for the booking's hosts, event type or team.

    A URL subscribed at several scopes is counted once, at its most specific scope
    (event type, then user, then team).
    """
    return choose_subscriptions(subscriptions_in_scope(session, payload), triggers)


def subscriptions_in_scope(
    session: Session, payload: PostCommitPayload
) -> list[WebhookSubscription]:
    """Every active subscription of the booking's hosts, event type or team, whatever its
    triggers: one read, from which `choose_subscriptions` picks per trigger."""
    scopes = [
        col(WebhookSubscription.user_id).in_([h.id for h in payload.hosts]),
        WebhookSubscription.event_type_id == payload.event_type.id,
    ]
    if payload.team_id is not None:
        scopes.append(WebhookSubscription.team_id == payload.team_id)
    return list(
        session.exec(
            select(WebhookSubscription).where(
                WebhookSubscription.active == True,  # noqa: E712
                or_(*scopes),
            )
        ).all()
    )


def choose_subscriptions(
    rows: Iterable[WebhookSubscription], triggers: Iterable[WebhookTrigger]
) -> list[WebhookSubscription]:
    """Those of `rows` subscribed to any of `triggers`, a URL once, at its most specific
    scope (event type, then user, then team)."""
    wanted = set(triggers)

    def specificity(sub: WebhookSubscription) -> tuple[int, int]:
        rank = 0 if sub.event_type_id else 1 if sub.user_id else 2
        return rank, sub.id or 0

    chosen: dict[tuple[str, WebhookTrigger], WebhookSubscription] = {}
    for sub in sorted(rows, key=specificity):
        for trigger in wanted.intersection(sub.triggers):
            chosen.setdefault((sub.subscriber_url, trigger), sub)
    unique = {sub.id: sub for sub in chosen.values()}
    return sorted(unique.values(), key=lambda s: s.id or 0)


def delete_pending_triggers(session: Session, booking_id: int) -> int:
    """Remove the booking's triggers not yet sent; sent ones stay as history."""
    result = session.exec(  # type: ignore[call-overload]
        delete(ScheduledTrigger).where(
            col(ScheduledTrigger.booking_id) == booking_id,
            col(ScheduledTrigger.status) == WorkStatus.PENDING,
        )
    )
    return result.rowcount or 0


def cancel_pending(session: Session, model: type[DueWork], booking_id: int, reason: str) -> int:
    """Set the booking's rows of `model` not yet done to CANCELLED, with the reason."""
    result = session.exec(  # type: ignore[call-overload]
        update(model)
        .where(
            col(model.booking_id) == booking_id,
            col(model.status) == WorkStatus.PENDING,
        )
        .values(status=WorkStatus.CANCELLED, skip_reason=reason[:500], claimed_until=None)
    )
    return result.rowcount or 0


def add_trigger_once(
    session: Session,
    *,
    booking_id: int,
    subscription_id: int,
    trigger: WebhookTrigger,
    due_at: datetime,
) -> bool:
    """Store a trigger unless one exists for this booking, subscriber and event."""
    return insert_once(
        session,
        ScheduledTrigger(
            dedupe_key=f"{booking_id}:{subscription_id}:{trigger.value}",
            booking_id=booking_id,
            subscription_id=subscription_id,
            trigger_event=trigger,
            due_at=due_at,
        ),
    )


def store_triggers(
    session: Session,
    payload: PostCommitPayload,
    triggers: Iterable[WebhookTrigger],
    due_at: Callable[[WebhookSubscription, WebhookTrigger], datetime],
) -> int:
    """Store one row per subscriber and trigger it subscribes to (once); return how many new."""
    wanted = tuple(triggers)
    stored = 0
    for sub in find_subscriptions(session, payload, wanted):
        for trigger in wanted:
            if trigger in sub.triggers:
                stored += add_trigger_once(
                    session,
                    booking_id=payload.booking_id,
                    subscription_id=sub.id,  # type: ignore[arg-type]
                    trigger=trigger,
                    due_at=due_at(sub, trigger),
                )
    return stored


def was_delivered(session: Session, message_id: str) -> bool:
    return (
        session.exec(
            select(WebhookDelivery.id).where(
                WebhookDelivery.message_id == message_id,
                col(WebhookDelivery.status_code).between(200, 299),
            )
        ).first()
        is not None
    )


def last_attempt(session: Session, message_id: str) -> WebhookDelivery | None:
    return session.exec(
        select(WebhookDelivery)
        .where(WebhookDelivery.message_id == message_id)
        .order_by(col(WebhookDelivery.id).desc())
    ).first()


def deactivate(session: Session, subscription_id: int, reason: str) -> None:
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is not None and subscription.active:
        subscription.active = False
        subscription.deactivated_reason = f"{reason} at {utcnow().isoformat()}"
        session.add(subscription)


def add_redelivery_once(session: Session, message: "WebhookMessage", due_at: datetime) -> bool:
    """Hand a message to the due-work sweep (once): one that failed its in-task retries, or
    one that waits for an earlier message of its booking."""
    return insert_once(
        session,
        WebhookRedelivery(
            dedupe_key=message.message_id,
            booking_id=message.booking_id,
            subscription_id=message.subscription_id,
            message_id=message.message_id,
            message=message.model_dump(mode="json"),
            due_at=due_at,
            committed_at=datetime.fromisoformat(message.committed_at)
            if message.committed_at
            else None,
            position=message.position,
        ),
    )


def attempts_so_far(session: Session, message_id: str) -> int:
    """How many attempts the delivery log holds for a message."""
    return session.exec(
        select(func.count())
        .select_from(WebhookDelivery)
        .where(WebhookDelivery.message_id == message_id)
    ).one()


def failing_since(session: Session, subscription_id: int) -> datetime | None:
    """When the subscription's current run of failures began: its first failed attempt
    after its last successful one (None if its last attempt succeeded or it has none)."""
    last_ok = session.exec(
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.subscription_id == subscription_id,
            col(WebhookDelivery.status_code).between(200, 299),
        )
        .order_by(col(WebhookDelivery.id).desc())
    ).first()
    conditions = [WebhookDelivery.subscription_id == subscription_id]
    if last_ok is not None:
        conditions.append(col(WebhookDelivery.id) > last_ok)
    return session.exec(
        select(WebhookDelivery.created_at).where(*conditions).order_by(col(WebhookDelivery.id))
    ).first()

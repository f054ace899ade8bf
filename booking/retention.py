"""What the bookings database forgets, and what it keeps.

Deleted, each after its own setting: webhook delivery attempts (but never a message's last
attempt, which is its final status), finished webhook redeliveries, and finished reminders
and scheduled triggers. Kept: bookings, outbox events and their outcomes, anything still
PENDING. Rows go in batches, each its own transaction, so a large backlog never holds a
long lock. `dry_run` counts instead.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, delete, exists, func, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from booking.db import session_scope
from booking.enums import WorkStatus
from booking.models import (
    ScheduledTrigger,
    WebhookDelivery,
    WebhookRedelivery,
    WorkflowReminder,
)
from booking.models.work import DueWork
from booking.settings import Settings

FINISHED = (WorkStatus.SENT, WorkStatus.SKIPPED, WorkStatus.CANCELLED, WorkStatus.FAILED)


@dataclass(frozen=True)
class Prunable:
    """One kind of row retention deletes: its table and which rows are old and done."""

    name: str
    model: type
    condition: ColumnElement[bool]


def prunable(settings: Settings, now: datetime) -> list[Prunable]:
    def before(days: float) -> datetime:
        return now - timedelta(days=days)

    later = aliased(WebhookDelivery)
    has_later_attempt = exists().where(
        later.message_id == WebhookDelivery.message_id, later.id > WebhookDelivery.id
    )

    def finished_due(model: type[DueWork], days: float) -> ColumnElement[bool]:
        return col(model.status).in_(FINISHED) & (col(model.due_at) < before(days))

    return [
        Prunable(
            "delivery attempts",
            WebhookDelivery,
            (col(WebhookDelivery.created_at) < before(settings.delivery_attempt_retention_days))
            & has_later_attempt,
        ),
        Prunable(
            "redeliveries",
            WebhookRedelivery,
            finished_due(WebhookRedelivery, settings.redelivery_retention_days),
        ),
        Prunable(
            "reminders",
            WorkflowReminder,
            finished_due(WorkflowReminder, settings.due_work_retention_days),
        ),
        Prunable(
            "scheduled triggers",
            ScheduledTrigger,
            finished_due(ScheduledTrigger, settings.due_work_retention_days),
        ),
    ]


def prune_bookings(
    engine: Engine, settings: Settings, now: datetime, *, dry_run: bool = False
) -> dict[str, int]:
    """Delete (or, with `dry_run`, count) what is old and finished; returns counts by kind."""
    counts: dict[str, int] = {}
    for kind in prunable(settings, now):
        ident = kind.model.id  # type: ignore[attr-defined]
        if dry_run:
            with session_scope(engine) as session:
                counts[kind.name] = session.execute(
                    select(func.count()).select_from(kind.model).where(kind.condition)
                ).scalar_one()
            continue
        counts[kind.name] = 0
        while True:
            with session_scope(engine) as session:
                ids = list(
                    session.execute(
                        select(ident).where(kind.condition).limit(settings.retention_batch_size)
                    ).scalars()
                )
                if ids:
                    session.execute(delete(kind.model).where(col(ident).in_(ids)))
            counts[kind.name] += len(ids)
            if len(ids) < settings.retention_batch_size:
                break
    return counts

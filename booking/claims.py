"""Claiming rows for one worker: the outbox relay and the due-work sweep share this."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlmodel import Session, col

from booking.models import OutboxEvent
from booking.models.work import DueWork


def claim(
    session: Session,
    model: type[DueWork] | type[OutboxEvent],
    *,
    conditions: Sequence[ColumnElement[bool]],
    order_by: Any,
    limit: int,
    now: datetime,
    lease_until: datetime,
) -> list[Any]:
    """Lease up to `limit` rows matching `conditions` and return their ids.

    One UPDATE ... RETURNING re-checks the conditions as it writes: on PostgreSQL the
    candidates are locked with SKIP LOCKED, and SQLite runs the statement under its single
    writer lock, so two workers never claim one row on either backend. The lease
    (`claimed_until`) frees the rows of a worker that died mid-pass.
    """
    claimable = (
        *conditions,
        col(model.claimed_until).is_(None) | (col(model.claimed_until) < now),
    )
    candidates = (
        select(col(model.id))
        .where(*claimable)
        .order_by(order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(model)
        .where(col(model.id).in_(candidates), *claimable)
        .values(claimed_until=lease_until)
        .returning(col(model.id))
    )
    return list(session.scalars(statement))

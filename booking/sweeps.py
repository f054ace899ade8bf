"""When the due-work sweep next has something to do, and which sweeps are already planned.

The sweep runs when work falls due rather than every minute: a step that stores due rows,
and every sweep as it ends, plans one for the earliest row still pending, unless a sweep is
planned by then (handoff/sweeps.py asks Prefect for it). Planned sweeps fall on whole periods
(`BOOKING_DUE_SWEEP_SECONDS`, a minute) and are kept a row per period, so however many
processes want a sweep in one period, Prefect is asked once.
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from booking.db import insert_once
from booking.enums import WorkStatus
from booking.models import PlannedSweep, ScheduledTrigger, WebhookRedelivery, WorkflowReminder

DUE_MODELS = (ScheduledTrigger, WorkflowReminder, WebhookRedelivery)


def earliest_pending(session: Session, now: datetime) -> datetime | None:
    """The due time of the first pending row that no sweep holds a claim on (a claimed row
    is the claiming sweep's to settle, or its lease's to free), or None."""
    found = [
        session.exec(
            select(func.min(model.due_at)).where(
                col(model.status) == WorkStatus.PENDING,
                col(model.claimed_until).is_(None) | (col(model.claimed_until) < now),
            )
        ).one()
        for model in DUE_MODELS
    ]
    return min((at for at in found if at is not None), default=None)


def round_up(moment: datetime, seconds: int) -> datetime:
    """`moment` rounded up to a whole multiple of `seconds` since the epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    periods = -((epoch - moment) // timedelta(seconds=seconds))  # ceiling division
    return epoch + periods * timedelta(seconds=seconds)


def planned_by(session: Session, now: datetime, at: datetime) -> datetime | None:
    """The first sweep planned after `now` and no later than `at`, or None."""
    return session.exec(
        select(func.min(PlannedSweep.at)).where(PlannedSweep.at > now, PlannedSweep.at <= at)
    ).one()


def reserve(session: Session, at: datetime) -> bool:
    """Record a sweep planned at `at`; False when another process recorded it first."""
    return insert_once(session, PlannedSweep(at=at), key="at")


def forget(session: Session, at: datetime) -> None:
    """Drop the record of a sweep that could not be planned after all."""
    session.exec(delete(PlannedSweep).where(col(PlannedSweep.at) == at))  # type: ignore[call-overload]


def prune(session: Session, before: datetime) -> int:
    """Drop the records of sweeps planned before `before` (they have run or never will)."""
    result = session.exec(delete(PlannedSweep).where(col(PlannedSweep.at) < before))  # type: ignore[call-overload]
    return result.rowcount or 0

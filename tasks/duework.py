"""What every kind of due work shares: the sweep's claim, recording how one row ended, and
the sweep's summary.

Rows are claimed with a lease, so two overlapping sweeps never deliver one row. A delivered
row ends SENT, a row with nothing left to do ends SKIPPED with its reason, and a failed one
goes back to PENDING for a later sweep until its schedule gives up, then stays FAILED with
its last error.
"""

import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, col

from booking.claims import claim
from booking.db import configured_engine, transaction
from booking.enums import BookingStatus, WorkStatus
from booking.models import Booking, ScheduledTrigger, WebhookRedelivery, WorkflowReminder
from booking.models.work import DueWork
from booking.settings import get_settings
from booking.timeutil import utcnow
from tasks.errors import PermanentError, TransientError

# "waiting": a message held back until an earlier message of its booking is final; it stays
# PENDING, with no attempt counted, for the next sweep.
Outcome = Literal["sent", "skipped", "waiting"]
Ending = Literal["sent", "skipped", "waiting", "failed"]
# What delivering one row came to: how it ended, and why (a skip's reason), or None.
Delivered = tuple[Outcome, str | None]


@dataclass(frozen=True)
class Claimed:
    """Ids of the rows one sweep leased."""

    triggers: list[int]
    reminders: list[int]
    redeliveries: list[int]


@task(name="claim due work", cache_policy=NO_CACHE)
def claim_due(now: datetime) -> Claimed:
    """Lease the due webhook triggers, reminders and redeliveries this sweep will deliver."""
    settings = get_settings()
    lease = now + timedelta(seconds=settings.due_lease_seconds)

    def due(session: Session, model: type[DueWork]) -> list[int]:
        return claim(
            session,
            model,
            conditions=(
                col(model.status) == WorkStatus.PENDING,
                col(model.due_at) <= now,
            ),
            order_by=model.due_at,
            limit=settings.due_batch_size,
            now=now,
            lease_until=lease,
        )

    with transaction() as session:
        return Claimed(
            triggers=due(session, ScheduledTrigger),
            reminders=due(session, WorkflowReminder),
            redeliveries=due(session, WebhookRedelivery),
        )


# After `attempts` failed sweeps: when to try again (not before the row's due time), or None
# to leave the row FAILED.
Schedule = Callable[[int], datetime | None]
ANY_TIME = datetime.min.replace(tzinfo=UTC)


def next_sweep(attempts: int) -> datetime | None:
    """Due work is tried by the next sweeps (its due time kept), `due_max_attempts` times."""
    return ANY_TIME if attempts < get_settings().due_max_attempts else None


def _finish(
    model: type[DueWork],
    row_id: int,
    ending: Ending,
    detail: str | None = None,
    schedule: Schedule = next_sweep,
) -> None:
    with transaction() as session:
        row = session.get_one(model, row_id)
        row.claimed_until = None
        match ending:
            case "sent":
                row.attempts += 1  # the one that delivered it counts too
                row.status, row.sent_at = WorkStatus.SENT, utcnow()
            case "skipped":
                row.status, row.skip_reason = WorkStatus.SKIPPED, detail
            case "waiting":
                row.status = WorkStatus.PENDING
            case "failed":
                row.attempts += 1
                row.last_error = (detail or "")[:500]
                retry_at = schedule(row.attempts)
                if retry_at is None:
                    row.status = WorkStatus.FAILED
                else:
                    row.status, row.due_at = WorkStatus.PENDING, max(row.due_at, retry_at)
        session.add(row)


def settle(
    model: type[DueWork],
    row_id: int,
    deliver: Callable[[int], Delivered],
    schedule: Schedule = next_sweep,
) -> Outcome:
    """Deliver one row and record how it ended; a failure is recorded, then re-raised so
    the task run shows it."""
    try:
        outcome, detail = deliver(row_id)
    except Exception as exc:
        _finish(model, row_id, "failed", f"{type(exc).__name__}: {exc}", schedule)
        raise
    _finish(model, row_id, outcome, detail, schedule)
    return outcome


def closed_reason(booking: Booking | None) -> str | None:
    """Why a booking's due work is no longer to be done, or None while it is ACCEPTED."""
    if booking is None:
        return "booking no longer exists"
    if booking.status != BookingStatus.ACCEPTED:
        return f"booking is {booking.status.value}"
    return None


def is_outside_fault(exc: BaseException) -> bool:
    """A failure of a subscriber or provider (down, slow, refusing), which a sweep expects and
    records, as opposed to one of the sweep's own (its database, a bug)."""
    return isinstance(
        exc,
        PermanentError | TransientError | httpx.HTTPError | smtplib.SMTPException | ConnectionError,
    )


@task(name="summarise sweep", cache_policy=NO_CACHE)
def summarise_sweep(now: datetime, outcomes: list[Outcome | BaseException]) -> dict[str, int]:
    """A table in the UI of what this sweep claimed, sent, skipped and failed; `broken`
    counts the failures that were the sweep's own, not a subscriber's or provider's."""
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    counts = {
        "claimed": len(outcomes),
        "sent": outcomes.count("sent"),
        "skipped": outcomes.count("skipped"),
        "waiting": outcomes.count("waiting"),
        "failed": len(errors),
        "broken": sum(not is_outside_fault(error) for error in errors),
    }
    create_table_artifact(
        key="deliver-due-work", table=[counts], description=f"Due work as of {now.isoformat()}"
    )
    get_run_logger().info(", ".join(f"{n} {k}" for k, n in counts.items()))
    return counts


def plan_next_sweep(*, after_sweep: bool = False) -> datetime | None:
    """Ask for a due-work sweep when the earliest pending row falls due (handoff/sweeps.py):
    called after storing due rows, and by each sweep as it ends (`after_sweep`). Only in a
    deployment's run; a flow called directly (a test, a shell) plans nothing. A failure is
    logged, not raised: the rows are stored, and the deployment's scheduled sweep is the net.
    Returns the minute planned, if one was."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    from handoff.sweeps import plan_sweep

    context = FlowRunContext.get()
    if context is None or context.flow_run is None or context.flow_run.deployment_id is None:
        return None
    logger = get_run_logger()
    try:
        with get_client(sync_client=True) as client:
            at = plan_sweep(
                configured_engine(),
                client,
                utcnow(),
                period=get_settings().due_sweep_seconds,
                after_sweep=after_sweep,
            )
    except Exception as exc:
        logger.warning(
            "could not plan a due-work sweep (%s); the scheduled sweep sends what is due",
            type(exc).__name__,
        )
        return None
    if at is not None:
        logger.info("due-work sweep planned at %s UTC", f"{at:%Y-%m-%d %H:%M:%S}")
    return at

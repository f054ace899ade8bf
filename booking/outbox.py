"""Outbox persistence: write an event with the booking, find and claim undispatched ones."""

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, literal, or_, update
from sqlmodel import Session, col, select

from booking.claims import claim
from booking.db import session_scope
from booking.enums import WorkStatus
from booking.errors import UnknownOutboxEvent
from booking.models import Booking, OutboxEvent, WebhookRedelivery
from booking.models.outbox import DONE, POST_COMMIT_KIND
from booking.models.types import table
from booking.payload import PostCommitPayload
from booking.timeutil import utcnow

ERROR_LIMIT = 500


def not_done() -> ColumnElement[bool]:
    """Events whose runs ended, but not all Completed. Rendered with its values inline, so
    that the planner sees it is the predicate of the partial index `ix_outboxevent_not_done`."""
    done = [literal(value, literal_execute=True) for value in DONE]
    return col(OutboxEvent.finished_at).is_not(None) & col(OutboxEvent.outcome).not_in(done)


def new_event_id() -> str:
    return str(uuid.uuid4())


def add_event(session: Session, payload: PostCommitPayload, *, dispatch_mode: str) -> str:
    """Write the event in the caller's transaction; it commits with the booking or not at all."""
    return add_event_data(
        session,
        payload.model_dump(mode="json"),
        dispatch_mode=dispatch_mode,
        committed_at=payload.committed_at or utcnow(),
    )


def add_event_data(
    session: Session, data: dict, *, dispatch_mode: str, committed_at: datetime
) -> str:
    """Write an event whose payload is already in its JSON form (`PostCommitPayload`'s)."""
    session.execute(
        table(OutboxEvent).insert(),
        [
            {
                "id": data["event_id"],
                "booking_uid": data["booking_uid"],
                "kind": POST_COMMIT_KIND,
                "schema_version": data["schema_version"],
                "payload": data,
                "dispatch_mode": dispatch_mode,
                "flow_run_ids": {},
                "dispatch_attempts": 0,
                # The booking's events are ordered by this (messages to one subscriber).
                "created_at": committed_at,
            }
        ],
    )
    return data["event_id"]


def load_event(session: Session, event_id: str) -> OutboxEvent:
    event = session.get(OutboxEvent, event_id)
    if event is None:
        raise UnknownOutboxEvent(f"no outbox event {event_id}")
    return event


def load_payload(session: Session, event_id: str) -> PostCommitPayload:
    """The snapshot a post-commit flow works from."""
    return PostCommitPayload.model_validate(load_event(session, event_id).payload)


@dataclass(frozen=True)
class DispatchRecord:
    """What one dispatch of an event created (deployment name -> run id), and its error."""

    event_id: str
    created: dict[str, str]
    expected: int
    error: str | None


def record_dispatches(engine: Engine, records: list[DispatchRecord]) -> None:
    """Store the run ids created so far, in one transaction; an event counts as dispatched
    once all its runs exist. Attempts are counted in the database, so concurrent
    dispatches of one event are all counted."""
    with session_scope(engine) as session:
        ids = {record.event_id for record in records}
        events = {
            event.id: event
            for event in session.exec(select(OutboxEvent).where(col(OutboxEvent.id).in_(ids)))
        }
        attempts = Counter(record.event_id for record in records)
        for record in records:
            event = events.get(record.event_id)
            if event is None:
                raise UnknownOutboxEvent(f"no outbox event {record.event_id}")
            event.flow_run_ids = {**event.flow_run_ids, **record.created}
            event.last_error = record.error[:ERROR_LIMIT] if record.error else None
            event.claimed_until = None
            done = len(event.flow_run_ids) >= record.expected and record.error is None
            if done and event.dispatched_at is None:  # a repeat keeps the first dispatch time
                event.dispatched_at = utcnow()
        for event_id, count in attempts.items():
            events[event_id].dispatch_attempts = OutboxEvent.dispatch_attempts + count  # type: ignore[assignment]


def claim_pending(
    engine: Engine,
    *,
    older_than: timedelta,
    lease: timedelta,
    limit: int,
    now: datetime | None = None,
) -> list[str]:
    """Claim up to `limit` undispatched events older than `older_than` for one relay pass."""
    now = now or utcnow()
    with session_scope(engine) as session:
        return claim(
            session,
            OutboxEvent,
            conditions=(
                OutboxEvent.dispatched_at.is_(None),  # type: ignore[union-attr]
                OutboxEvent.created_at <= now - older_than,  # type: ignore[operator]
            ),
            order_by=OutboxEvent.created_at,
            limit=limit,
            now=now,
            lease_until=now + lease,
        )


@dataclass(frozen=True)
class Unfinished:
    """A dispatched event whose runs the relay has not yet seen reach a final state."""

    event_id: str
    booking_uid: str
    flow_run_ids: dict[str, str]
    restarts: int
    created_at: datetime  # its commit time


def claim_unfinished(
    engine: Engine,
    *,
    older_than: timedelta,
    lease: timedelta,
    limit: int,
    now: datetime | None = None,
) -> list[Unfinished]:
    """Claim dispatched events not yet finished, dispatched at least `older_than` ago."""
    now = now or utcnow()
    with session_scope(engine) as session:
        ids = claim(
            session,
            OutboxEvent,
            conditions=(
                col(OutboxEvent.finished_at).is_(None),
                col(OutboxEvent.dispatched_at).is_not(None),
                col(OutboxEvent.dispatched_at) <= now - older_than,
            ),
            order_by=OutboxEvent.dispatched_at,
            limit=limit,
            now=now,
            lease_until=now + lease,
        )
        rows = session.exec(select(OutboxEvent).where(col(OutboxEvent.id).in_(ids))).all()
        return [
            Unfinished(e.id, e.booking_uid, e.flow_run_ids, e.restarts, e.created_at) for e in rows
        ]


def record_finished(engine: Engine, outcomes: dict[str, str]) -> None:
    """Mark events finished, each with the outcome of its runs (`event id -> outcome`)."""
    if not outcomes:
        return
    now = utcnow()
    with session_scope(engine) as session:
        for event in session.exec(
            select(OutboxEvent).where(col(OutboxEvent.id).in_(list(outcomes)))
        ):
            event.finished_at, event.outcome = now, outcomes[event.id]
            event.claimed_until = None


def record_restarts(engine: Engine, event_ids: list[str]) -> None:
    """Count a restart of the runs of each event. The claim stays until its lease ends: the
    restarted runs get that long before a relay looks at them again."""
    if not event_ids:
        return
    with session_scope(engine) as session:
        session.execute(
            update(OutboxEvent)
            .where(col(OutboxEvent.id).in_(event_ids))
            .values(restarts=OutboxEvent.restarts + 1)
        )


def release(engine: Engine, event_ids: list[str]) -> None:
    """Give claimed events back, to be looked at again by a later pass."""
    if not event_ids:
        return
    with session_scope(engine) as session:
        session.execute(
            update(OutboxEvent).where(col(OutboxEvent.id).in_(event_ids)).values(claimed_until=None)
        )


def unfinished(session: Session, *, limit: int = 100) -> list[OutboxEvent]:
    """Events whose post-commit work is not known done: not dispatched, or dispatched and
    not finished, or finished with an outcome other than Completed. Oldest first."""
    return list(
        session.exec(
            select(OutboxEvent)
            .where(col(OutboxEvent.finished_at).is_(None) | not_done())
            .order_by(col(OutboxEvent.created_at))
            .limit(limit)
        )
    )


def with_held_messages(session: Session, settled: dict[str, datetime], now: datetime) -> list[str]:
    """The bookings among `settled` (`uid -> commit time of what just settled there`) that
    have a webhook message committed after it, held back and due now (see
    tasks/delivery/order.py): a sweep could send it now."""
    if not settled:
        return []
    later = or_(
        *(
            (col(Booking.uid) == uid) & (col(WebhookRedelivery.committed_at) > committed_at)
            for uid, committed_at in settled.items()
        )
    )
    return list(
        session.exec(
            select(Booking.uid)
            .join(WebhookRedelivery, col(WebhookRedelivery.booking_id) == col(Booking.id))
            .where(
                later,
                WebhookRedelivery.status == WorkStatus.PENDING,
                col(WebhookRedelivery.due_at) <= now,
            )
            .distinct()
        )
    )

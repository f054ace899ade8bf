"""Outbox persistence: write an event with the booking, find and claim undispatched ones."""

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from booking.claims import claim
from booking.db import session_scope
from booking.errors import UnknownOutboxEvent
from booking.models import OutboxEvent
from booking.models.outbox import POST_COMMIT_KIND
from booking.models.types import table
from booking.payload import PostCommitPayload
from booking.timeutil import utcnow

ERROR_LIMIT = 500


def new_event_id() -> str:
    return str(uuid.uuid4())


def add_event(session: Session, payload: PostCommitPayload, *, dispatch_mode: str) -> str:
    """Write the event in the caller's transaction; it commits with the booking or not at all."""
    session.execute(
        table(OutboxEvent).insert(),
        [
            {
                "id": payload.event_id,
                "booking_uid": payload.booking_uid,
                "kind": POST_COMMIT_KIND,
                "schema_version": payload.schema_version,
                "payload": payload.model_dump(mode="json"),
                "dispatch_mode": dispatch_mode,
                "flow_run_ids": {},
                "dispatch_attempts": 0,
                "created_at": utcnow(),
            }
        ],
    )
    return payload.event_id


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

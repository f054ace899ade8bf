"""Outbox persistence: write an event with the booking, find and claim undispatched ones."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from booking.claims import claim
from booking.db import session_scope
from booking.errors import UnknownOutboxEvent
from booking.models import OutboxEvent
from booking.payload import PostCommitPayload
from booking.timeutil import utcnow

ERROR_LIMIT = 500


def new_event_id() -> str:
    return str(uuid.uuid4())


def add_event(session: Session, payload: PostCommitPayload, *, dispatch_mode: str) -> OutboxEvent:
    """Stage the event in the caller's transaction; it commits with the booking or not at all."""
    event = OutboxEvent(
        id=payload.event_id,
        booking_uid=payload.booking_uid,
        schema_version=payload.schema_version,
        payload=payload.model_dump(mode="json"),
        dispatch_mode=dispatch_mode,
    )
    session.add(event)
    return event


def load_event(session: Session, event_id: str) -> OutboxEvent:
    event = session.get(OutboxEvent, event_id)
    if event is None:
        raise UnknownOutboxEvent(f"no outbox event {event_id}")
    return event


def load_payload(session: Session, event_id: str) -> PostCommitPayload:
    """The snapshot a post-commit flow works from."""
    return PostCommitPayload.model_validate(load_event(session, event_id).payload)


def record_dispatch(
    engine: Engine, event_id: str, *, created: dict[str, str], expected: int, error: str | None
) -> bool:
    """Store the run ids created so far; the event counts as dispatched once all exist."""
    with session_scope(engine) as session:
        event = load_event(session, event_id)
        event.flow_run_ids = {**event.flow_run_ids, **created}
        event.dispatch_attempts += 1
        event.last_error = error[:ERROR_LIMIT] if error else None
        event.claimed_until = None
        done = len(event.flow_run_ids) >= expected and error is None
        if done and event.dispatched_at is None:  # a repeat keeps the first dispatch time
            event.dispatched_at = utcnow()
        return done


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

"""The step every post-commit flow starts with: read the booking's outbox snapshot."""

from prefect import task

from booking.db import configured_engine, session_scope
from booking.outbox import load_payload
from booking.payload import PostCommitPayload
from tasks.errors import PermanentError
from tasks.retry import step_policy


class SnapshotMismatch(PermanentError):
    """The flow was started with a booking uid that is not the event's booking."""


@task(name="load booking snapshot", **step_policy("database"))
def load_snapshot(event_id: str, booking_uid: str) -> PostCommitPayload:
    """Read the post-commit payload the booking transaction wrote."""
    with session_scope(configured_engine()) as session:
        payload = load_payload(session, event_id)
    if payload.booking_uid != booking_uid:
        raise SnapshotMismatch(f"event {event_id} belongs to another booking, not {booking_uid}")
    return payload

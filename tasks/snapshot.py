"""What every post-commit flow starts from: the booking's outbox snapshot."""

from booking.db import transaction
from booking.outbox import load_payload
from booking.payload import PostCommitPayload
from tasks.errors import PermanentError


class SnapshotMismatch(PermanentError):
    """The flow was started with a booking uid that is not the event's booking."""


def load_snapshot(event_id: str, booking_uid: str) -> PostCommitPayload:
    """The post-commit payload the booking transaction wrote (a read: not a step of its own)."""
    with transaction() as session:
        payload = load_payload(session, event_id)
    if payload.booking_uid != booking_uid:
        raise SnapshotMismatch(f"event {event_id} belongs to another booking, not {booking_uid}")
    return payload

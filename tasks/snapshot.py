"""The step every post-commit flow starts with: read the booking's outbox snapshot."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from booking.db import engine_for, session_scope
from booking.outbox import load_payload
from booking.payload import PostCommitPayload
from booking.settings import get_settings
from tasks.retry import backoff_delays, retry_transient


class SnapshotMismatch(ValueError):
    """The flow was started with a booking uid that is not the event's booking."""


@task(
    name="load booking snapshot",
    retries=3,
    retry_delay_seconds=backoff_delays(3, base=1.0),
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def load_snapshot(event_id: str, booking_uid: str) -> PostCommitPayload:
    """Read the post-commit payload the booking transaction wrote."""
    with session_scope(engine_for(get_settings().database_url)) as session:
        payload = load_payload(session, event_id)
    if payload.booking_uid != booking_uid:
        raise SnapshotMismatch(f"event {event_id} belongs to another booking, not {booking_uid}")
    return payload

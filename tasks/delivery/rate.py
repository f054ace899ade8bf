"""A subscription's rate: at most `rate_per_second` messages a second to it, across every
worker, kept in its row of the bookings database.

Each message under a rate reserves the next send slot with one statement,

    UPDATE webhooksubscription
       SET next_send_at = max(coalesce(next_send_at, now), now) + 1 / rate
     WHERE id = ? RETURNING next_send_at

which the database runs one at a time per row (PostgreSQL's row lock, SQLite's single
writer), so two messages never get one slot, whichever worker sends them. The message's
slot is the returned time less 1/rate; it sleeps until then and sends. Slots are exactly
1/rate apart, so the subscriber gets the rate it named, not less (Prefect's decaying limit
restarted its clock on a refused request and gave about 60 % of it), and no one second holds
more than the rate and one. A delivery waiting for its slot is not failed, spends no retry
and leaves nothing in the attempt log. It costs the database one indexed row update a
message, and the Prefect server nothing.

`now` is the sending worker's clock: workers on one network keep time within milliseconds.
"""

import time

from sqlalchemy import func, update
from sqlmodel import col

from booking.db import transaction
from booking.models import WebhookSubscription

# How late after its slot, as a share of the interval, a message may still go.
LATE_FRACTION = 0.5


def reserve_slot(subscription_id: int, rate: float, now: float | None = None) -> float:
    """Reserve the subscription's next send slot; returns its time (seconds since the
    epoch), `now` or later."""
    now = time.time() if now is None else now
    interval = 1.0 / rate
    next_send_at = col(WebhookSubscription.next_send_at)
    with transaction() as session:
        # max(a, b) of two values: GREATEST on PostgreSQL, max() on SQLite.
        greatest = func.greatest if session.get_bind().dialect.name == "postgresql" else func.max
        reserved = session.execute(
            update(WebhookSubscription)
            .where(col(WebhookSubscription.id) == subscription_id)
            .values(next_send_at=greatest(func.coalesce(next_send_at, now), now) + interval)
            .returning(next_send_at)
        ).scalar_one()
    return reserved - interval


def wait_for_rate(subscription_id: int, rate: float | None) -> float | None:
    """Return once the subscription's rate lets one more message go (at once without one),
    with the message's slot (None without a rate).

    A sender that wakes more than half an interval after its slot (a busy machine kept it
    from running) takes a new slot rather than send late beside the next slot's message:
    the rate may then be missed by a slot, never exceeded."""
    if rate is None:
        return None
    while True:
        slot = reserve_slot(subscription_id, rate)
        if (wait := slot - time.time()) > 0:
            time.sleep(wait)
        if not is_late(slot, rate):
            return slot


def is_late(slot: float, rate: float) -> bool:
    """Whether a message is now too late for its slot to go without crowding the next."""
    return time.time() - slot > LATE_FRACTION / rate

"""A subscription's rate: at most `rate_per_second` messages a second to it, across every
worker, with Prefect's rate limit (a global concurrency limit whose slots decay).

The limit has one slot that frees itself 1/rate seconds after it is taken, so messages go
out at least 1/rate seconds apart. A delivery over the rate waits for the slot before it
connects: it is not failed, spends no retry and leaves nothing in the attempt log. The
limit is made (or changed) by the first delivery that needs it, in each process, from the
subscription's row, so setting a rate needs nothing but the row.
"""

import contextlib
import threading

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

_lock = threading.Lock()
_applied: dict[int, float | None] = {}  # subscription id -> the rate its limit was set to


def limit_name(subscription_id: int) -> str:
    return f"webhook-rate-subscription-{subscription_id}"


def wait_for_rate(subscription_id: int, rate: float | None) -> None:
    """Return once the subscription's rate allows one more message (at once without one)."""
    with _lock:
        if _applied.get(subscription_id) != rate:
            apply_rate(subscription_id, rate)
            _applied[subscription_id] = rate
    if rate is not None:
        rate_limit(limit_name(subscription_id), occupy=1, strict=True)


def apply_rate(subscription_id: int, rate: float | None) -> None:
    """Make the subscription's limit match `rate`: created, changed, or removed (None).

    Many processes may do this at once (the first burst to a new subscription): a limit
    another one created or deleted meanwhile is what this one wanted too."""
    name = limit_name(subscription_id)
    with get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            existing = None
        if rate is None:
            if existing is not None:
                with contextlib.suppress(ObjectNotFound):  # another one deleted it
                    client.delete_global_concurrency_limit_by_name(name)
            return
        wanted = GlobalConcurrencyLimitUpdate(limit=1, slot_decay_per_second=rate)
        if existing is None:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1, slot_decay_per_second=rate)
                )
                return
            except ObjectAlreadyExists:  # another delivery made it first; set it to this rate
                pass
        elif existing.slot_decay_per_second == rate and existing.limit == 1:
            return
        client.update_global_concurrency_limit(name, wanted)

"""How many calls to one outside service run at once, across every worker: its cap
(`BOOKING_PROVIDER_CAPS`), held in the bookings database.

A step takes a slot only around its call out (the HTTP request, the SMTP session), so a
delivery waiting for its subscriber's rate, or for a `Retry-After`, holds none. A slot is a
row of `providerlease`, taken by one statement that inserts it only while fewer than the cap
are held,

    INSERT INTO providerlease (provider, expires_at)
    SELECT :provider, :now + LEASE_SECONDS
     WHERE (SELECT count(*) FROM providerlease
             WHERE provider = :provider AND expires_at > :now) < :cap
    RETURNING id

and given back by deleting that row. PostgreSQL runs it under a transaction-scoped advisory
lock per provider, SQLite under its single writer, so two workers never both take the last
slot. A worker killed while holding a slot does not keep it: the slot lapses after
`LEASE_SECONDS`, longer than any call is allowed to last. A step that finds every slot taken
waits (a short sleep, doubling to a second) without failing or spending a retry.

This replaced Prefect's tag concurrency limits on the steps: a tagged task run asked the
server for a lease, renewed and released it, and recorded two events, for every call.
"""

import contextlib
import logging
import random
import time
import zlib
from collections.abc import Iterator

from sqlalchemy import delete, func, insert, literal, select, text
from sqlmodel import col

from booking.db import transaction
from booking.models import ProviderLease
from booking.settings import get_settings

logger = logging.getLogger(__name__)

# Longer than any call may last (a webhook attempt is cut off at its total timeout, SMTP and
# provider clients time out in 30 s): a slot lapses only when its holder is gone.
LEASE_SECONDS = 300.0
FIRST_WAIT_SECONDS = 0.05
LONGEST_WAIT_SECONDS = 1.0
# A wait this long is worth a line in the worker's log: the cap is what holds the step up.
REPORTED_WAIT_SECONDS = 10.0


def cap_of(provider: str) -> int:
    caps = get_settings().provider_caps
    if provider not in caps:
        raise KeyError(f"no cap for {provider!r} in BOOKING_PROVIDER_CAPS ({', '.join(caps)})")
    return caps[provider]


def try_acquire(provider: str, cap: int, now: float | None = None) -> int | None:
    """Take one of the provider's `cap` slots if one is free: its lease id, else None."""
    now = time.time() if now is None else now
    held = (
        select(func.count())
        .select_from(ProviderLease)
        .where(col(ProviderLease.provider) == provider, col(ProviderLease.expires_at) > now)
        .scalar_subquery()
    )
    with transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            # One taker at a time per provider (the count and the insert are two reads of
            # the table; READ COMMITTED alone would let two takers see the same count).
            session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(provider)}
            )
        return session.execute(
            insert(ProviderLease)
            .from_select(
                ["provider", "expires_at"],
                select(literal(provider), literal(now + LEASE_SECONDS)).where(held < cap),
            )
            .returning(col(ProviderLease.id))
        ).scalar_one_or_none()


def release(provider: str, lease_id: int) -> None:
    """Give the slot back, and clear the provider's lapsed slots on the way."""
    with transaction() as session:
        session.execute(
            delete(ProviderLease).where(
                (col(ProviderLease.id) == lease_id)
                | (
                    (col(ProviderLease.provider) == provider)
                    & (col(ProviderLease.expires_at) <= time.time())
                )
            )
        )


@contextlib.contextmanager
def provider_slot(provider: str) -> Iterator[None]:
    """Hold one of `provider`'s slots for the block, waiting for one if all are taken."""
    cap = cap_of(provider)
    started = time.monotonic()
    wait = FIRST_WAIT_SECONDS
    reported = False
    while (lease_id := try_acquire(provider, cap)) is None:
        if not reported and time.monotonic() - started > REPORTED_WAIT_SECONDS:
            logger.info("waiting for a %s slot: all %d are in use", provider, cap)
            reported = True
        time.sleep(wait * random.uniform(0.5, 1.0))
        wait = min(wait * 2, LONGEST_WAIT_SECONDS)
    try:
        yield
    finally:
        try:
            release(provider, lease_id)
        except Exception:  # the call was made: failing the step now would make it again
            logger.warning(
                "could not give back a %s slot (it lapses in %.0f s)",
                provider,
                LEASE_SECONDS,
                exc_info=True,
            )


def _lock_key(provider: str) -> int:
    """A stable advisory-lock key per provider (a signed 64-bit integer)."""
    return zlib.crc32(f"provider-cap:{provider}".encode()) - 2**31

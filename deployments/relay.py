"""The outbox relay: dispatch again every event whose runs were not confirmed created."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from booking import outbox
from booking.settings import Settings
from deployments.dispatch import PostCommitDispatcher

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayReport:
    claimed: int
    dispatched: int
    failed: int


def relay_pending(
    *,
    engine: Engine,
    dispatcher: PostCommitDispatcher,
    settings: Settings,
    now: datetime | None = None,
) -> RelayReport:
    """Claim undispatched events older than the grace period and dispatch each once more."""
    event_ids = outbox.claim_pending(
        engine,
        older_than=timedelta(seconds=settings.relay_grace_seconds),
        lease=timedelta(seconds=settings.relay_lease_seconds),
        limit=settings.relay_batch_size,
        now=now,
    )
    futures = [dispatcher.submit(event_id) for event_id in event_ids]
    dispatched = 0
    for future in futures:
        try:
            outcome = future.result(timeout=settings.relay_lease_seconds)
        except Exception:
            logger.exception("relay dispatch failed")
            continue
        dispatched += outcome.dispatched
    report = RelayReport(
        claimed=len(event_ids), dispatched=dispatched, failed=len(event_ids) - dispatched
    )
    if event_ids:
        logger.info(
            "outbox relay: %d claimed, %d dispatched, %d still pending",
            report.claimed,
            report.dispatched,
            report.failed,
        )
    return report

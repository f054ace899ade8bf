"""Retention, daily (prefect.yaml) or `booking retention run [--dry-run]`: old final Prefect
flow runs with their task runs, logs and artifacts, and old finished rows of the bookings
database, deleted in batches; each outbox event's outcome and each message's final status
are kept. Its table in the UI says what it deleted (or, dry, would delete)."""

from datetime import datetime, timedelta

from prefect import flow
from prefect.artifacts import create_table_artifact

from booking.db import transaction
from booking.timeutil import utcnow
from deployments.names import RETENTION
from flows.results import NO_RESULTS
from tasks.delivery.health import subscription_health
from tasks.retention import prune_bookings_history, prune_prefect_history


@flow(name=RETENTION.flow, flow_run_name="retention-{dry_run}", log_prints=False, **NO_RESULTS)
def retention(dry_run: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Delete (or count, `dry_run`) what is older than the retention settings at `now`."""
    now = now or utcnow()
    counts = {
        **{f"Prefect {k}": n for k, n in prune_prefect_history(now, dry_run).items()},
        **prune_bookings_history(now, dry_run),
    }
    create_table_artifact(
        key="retention",
        table=[
            {"what": what, "would delete" if dry_run else "deleted": n}
            for what, n in counts.items()
        ],
        description=f"Retention as of {now.isoformat()}" + (" (dry run)" if dry_run else ""),
    )
    publish_health(now)
    return counts


def publish_health(now: datetime) -> None:
    """The last day's health of every subscription, as a table in the UI (see
    `booking subscriptions stats`)."""
    with transaction() as session:
        rows = [health.row() for health in subscription_health(session, now - timedelta(days=1))]
    create_table_artifact(
        key="subscription-health",
        table=rows or [{"subscription": "none"}],
        description=f"Webhook subscriptions, the 24 hours to {now.isoformat()}",
    )

"""Retention's steps: old final Prefect flow runs (with their task runs, logs and artifacts)
deleted through Prefect's API, and old finished rows of the bookings database
(`booking/retention.py`).

A flow run is deleted only once it is final (Completed, Failed, Crashed, Cancelled) and ended
before the cutoff; a run still scheduled, pending or running is never touched. Runs go 50 at a
time through `POST /flow_runs/bulk_delete` (Prefect deletes their task runs with them and
their logs just after); their artifacts are deleted first, by id.
"""

from datetime import datetime, timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import TERMINAL_STATES

from booking.db import configured_engine
from booking.retention import prune_bookings
from booking.settings import get_settings

BULK_LIMIT = 50  # Prefect's most per bulk delete


def old_final_runs(cutoff: datetime, tags: list[str] | None = None) -> FlowRunFilter:
    """Flow runs that are final and ended before `cutoff` (and carry all `tags`, if given)."""
    return FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(TERMINAL_STATES))),
        end_time=FlowRunFilterEndTime(before_=cutoff),
        tags=FlowRunFilterTags(all_=tags) if tags else None,
    )


def prune_runs(
    client: SyncPrefectClient, cutoff: datetime, *, dry_run: bool, tags: list[str] | None = None
) -> dict[str, int]:
    """Delete (or count) the final flow runs that ended before `cutoff`, with their task
    runs, logs and artifacts. `tags` narrows it (a test's own runs)."""
    runs = old_final_runs(cutoff, tags)
    if dry_run:
        return {"flow runs": client.count_flow_runs(flow_run_filter=runs), "artifacts": 0}
    deleted = {"flow runs": 0, "artifacts": 0}
    while batch := client.read_flow_runs(flow_run_filter=runs, limit=BULK_LIMIT):
        ids = [run.id for run in batch]
        for artifact in client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
        ):
            client.delete_artifact(artifact.id)
            deleted["artifacts"] += 1
        response = client.request(
            "POST",
            "/flow_runs/bulk_delete",
            json={
                "flow_runs": FlowRunFilter(id=FlowRunFilterId(any_=ids)).model_dump(mode="json"),
                "limit": BULK_LIMIT,
            },
        )
        gone = response.json()["deleted"]
        deleted["flow runs"] += len(gone)
        if not gone:  # nothing more could be deleted: do not spin
            break
    return deleted


@task(name="prune Prefect history", cache_policy=NO_CACHE)
def prune_prefect_history(now: datetime, dry_run: bool = False) -> dict[str, int]:
    """Final flow runs older than `prefect_retention_days`, with what belongs to them."""
    cutoff = now - timedelta(days=get_settings().prefect_retention_days)
    with get_client(sync_client=True) as client:
        counts = prune_runs(client, cutoff, dry_run=dry_run)
    _log("Prefect", counts, dry_run)
    return counts


@task(name="prune bookings history", cache_policy=NO_CACHE)
def prune_bookings_history(now: datetime, dry_run: bool = False) -> dict[str, int]:
    """Old finished delivery attempts, redeliveries and due rows of the bookings database."""
    counts = prune_bookings(configured_engine(), get_settings(), now, dry_run=dry_run)
    _log("bookings database", counts, dry_run)
    return counts


def _log(where: str, counts: dict[str, int], dry_run: bool) -> None:
    verb = "would delete" if dry_run else "deleted"
    said = ", ".join(f"{n} {what}" for what, n in counts.items())
    get_run_logger().info("%s: %s %s", where, verb, said)

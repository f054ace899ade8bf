"""Retention on Prefect's side, against the real server: final runs that ended before the
cutoff go with their task runs and artifacts; a run that is not final stays. The runs are
tagged for this test, and retention is narrowed to that tag: the server is shared."""

import uuid
from datetime import timedelta

import pytest
from prefect import flow, tags, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterTags,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)

from booking.timeutil import utcnow
from tasks.retention import prune_runs

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


@task
def step() -> str:
    create_markdown_artifact("a step's note")
    return "done"


@flow
def short() -> str:
    return step()


def test_old_final_runs_go_with_their_task_runs_and_artifacts_and_others_stay() -> None:
    tag = f"retention-test-{uuid.uuid4().hex[:8]}"
    with tags(tag):
        finished = [short(return_state=True) for _ in range(3)]
    ended = [state.state_details.flow_run_id for state in finished]
    later = utcnow() + timedelta(minutes=1)  # every run so far ended before the cutoff
    with get_client(sync_client=True) as client:
        waiting = client.create_flow_run(short, tags=[tag])  # Scheduled: never final
        mine = FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]))

        dry = prune_runs(client, later, dry_run=True, tags=[tag])
        not_old_enough = prune_runs(client, utcnow() - timedelta(days=1), dry_run=False, tags=[tag])
        kept_by_dry = client.count_flow_runs(flow_run_filter=mine)
        done = prune_runs(client, later, dry_run=False, tags=[tag])
        left = client.read_flow_runs(flow_run_filter=mine)
        task_runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=ended))
        )
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ended))
        )

    assert dry == {"flow runs": 3, "artifacts": 0} and kept_by_dry == 4  # dry: kept
    assert done == {"flow runs": 3, "artifacts": 3}
    assert [run.id for run in left] == [waiting.id]
    assert task_runs == [] and artifacts == []
    assert not_old_enough == {"flow runs": 0, "artifacts": 0}


def test_the_command_counts_what_it_would_delete(configure) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    configure()
    result = CliRunner().invoke(app, ["retention", "run", "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "would delete\t0\tPrefect flow runs" in result.output  # none is 30 days old
    assert "would delete\t0\tdelivery attempts" in result.output

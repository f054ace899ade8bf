"""What a forked run's events name besides the run (its flow, deployment, work queue and work
pool) the forkserver reads once before it forks, so that a run does not ask the server for
them (`worker/forkserver.py`: `prime_related_objects`). A real server with prefect.yaml
deployed."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext
from prefect.events.related import RESOURCE_CACHE, related_resources_from_run_context

from deployments.names import ALL, POST_COMMIT
from local.stack import LocalPrefect
from worker.forkserver import prime_related_objects

# Nothing listens here: a client of this address fails any request it makes.
NOWHERE = "http://127.0.0.1:9/api"


@pytest.fixture(params=[None, 2.0], ids=["at-start", "refreshed"])
def primed(deployed: LocalPrefect, request: pytest.FixtureRequest) -> Iterator[None]:
    saved = dict(RESOURCE_CACHE)
    RESOURCE_CACHE.clear()
    prime_related_objects(timeout=request.param)
    yield
    RESOURCE_CACHE.clear()
    RESOURCE_CACHE.update(saved)


def related_of(run: FlowRun) -> tuple[dict[str, dict[str, str]], set[str]]:
    """What the run's events would name: by role, and its tags."""

    async def read() -> list:
        with FlowRunContext.model_construct(flow_run=run):
            return await related_resources_from_run_context(PrefectClient(NOWHERE))

    resources = asyncio.run(read())
    by_role = {r.role: dict(r) for r in resources if r.role != "tag"}
    return by_role, {r.id for r in resources if r.role == "tag"}


def test_every_deployments_flow_queue_and_pool_is_read_once(
    primed: None, prefect_client: SyncPrefectClient
) -> None:
    for name in ALL:
        deployment = prefect_client.read_deployment_by_name(name.full_name)
        assert f"deployment.{deployment.id}" in RESOURCE_CACHE
        assert f"flow.{deployment.flow_id}" in RESOURCE_CACHE
        assert f"work-queue.{deployment.work_queue_id}" in RESOURCE_CACHE
        assert f"work-pool.{deployment.work_pool_name}" in RESOURCE_CACHE


def test_a_runs_events_name_what_the_server_holds_without_asking_it(
    primed: None, prefect_client: SyncPrefectClient
) -> None:
    deployment = prefect_client.read_deployment_by_name(POST_COMMIT.full_name)
    run = FlowRun(
        name="primed-run",
        flow_id=deployment.flow_id,
        deployment_id=deployment.id,
        work_queue_id=deployment.work_queue_id,
        work_pool_name=deployment.work_pool_name,
    )

    related, tags = related_of(run)  # its client reaches no server: every object is primed

    assert related["deployment"]["prefect.resource.id"] == f"prefect.deployment.{deployment.id}"
    assert related["deployment"]["prefect.resource.name"] == POST_COMMIT.name
    assert related["flow"]["prefect.resource.name"] == POST_COMMIT.flow
    assert related["work-queue"]["prefect.resource.name"] == deployment.work_queue_name
    assert related["work-pool"]["prefect.resource.name"] == deployment.work_pool_name
    assert tags == {f"prefect.tag.{tag}" for tag in deployment.tags}


def test_without_priming_the_run_would_have_asked(deployed: LocalPrefect) -> None:
    """The check above can fail: the same run, nothing primed, needs the server."""
    saved = dict(RESOURCE_CACHE)
    RESOURCE_CACHE.clear()
    try:
        run = FlowRun(name="unprimed-run", flow_id="00000000-0000-0000-0000-000000000001")
        with pytest.raises(httpx.ConnectError):
            related_of(run)
    finally:
        RESOURCE_CACHE.update(saved)


def test_a_server_out_of_reach_leaves_what_was_read_before(deployed: LocalPrefect) -> None:
    from prefect.settings import PREFECT_API_URL
    from prefect.settings.context import temporary_settings

    saved = dict(RESOURCE_CACHE)
    try:
        prime_related_objects()
        before = dict(RESOURCE_CACHE)
        with temporary_settings({PREFECT_API_URL: NOWHERE}):
            prime_related_objects(timeout=2.0)
        after = dict(RESOURCE_CACHE)
        assert before and after == before
    finally:
        RESOURCE_CACHE.clear()
        RESOURCE_CACHE.update(saved)

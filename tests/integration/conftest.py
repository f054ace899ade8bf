from collections.abc import Iterator

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun

from deployments.local import LocalPrefect
from deployments.names import booking_tag

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def deployed(prefect_server: LocalPrefect) -> LocalPrefect:
    """The Prefect server with the work pool and every deployment of prefect.yaml."""
    prefect_server.deploy_all()
    return prefect_server


@pytest.fixture
def prefect_client(prefect_server: LocalPrefect) -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as client:
        yield client


def runs_of_booking(client: SyncPrefectClient, booking_uid: str) -> list[FlowRun]:
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[booking_tag(booking_uid)]))
    )

from collections.abc import Iterator

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client

from local.stack import LocalPrefect
from tests.helpers import SharedServer, run_temp


@pytest.fixture(scope="session")
def deployed(
    prefect_server: LocalPrefect, tmp_path_factory: pytest.TempPathFactory
) -> LocalPrefect:
    """The Prefect server with the work pool and every deployment of prefect.yaml."""
    shared = SharedServer(run_temp(tmp_path_factory))
    shared.stack = prefect_server
    shared.deploy_once()
    return prefect_server


@pytest.fixture
def prefect_client(prefect_server: LocalPrefect) -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as client:
        yield client

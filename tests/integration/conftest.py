from collections.abc import Iterator

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client

from local.stack import LocalPrefect


@pytest.fixture(scope="session")
def deployed(prefect_server: LocalPrefect) -> LocalPrefect:
    """The Prefect server with the work pool and every deployment of prefect.yaml."""
    prefect_server.deploy_all()
    return prefect_server


@pytest.fixture
def prefect_client(prefect_server: LocalPrefect) -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as client:
        yield client

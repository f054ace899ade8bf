"""Helpers the tests import (fixtures live in the conftest files, helpers here)."""

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun

from deployments.names import booking_tag

# Settings every test runs with, in the test process (the `configure` fixture) and in the
# workers of the stacks tests start: subscribers are real servers on loopback, so exactly
# that is allowed, and retries are quick.
TEST_SETTINGS = {
    "BOOKING_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    "BOOKING_WEBHOOK_RETRIES": "3",
    "BOOKING_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
    "BOOKING_WEBHOOK_TIMEOUT_SECONDS": "1.0",
    "BOOKING_WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1.0",
    "BOOKING_PROVIDER_RETRIES": "2",
    "BOOKING_PROVIDER_RETRY_BASE_SECONDS": "0.05",
}


def runs_of_booking(client: SyncPrefectClient, booking_uid: str) -> list[FlowRun]:
    """Every flow run of one booking (tagged `booking:<uid>`)."""
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[booking_tag(booking_uid)]))
    )

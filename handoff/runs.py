"""The one way a booking event's deployment run is created: by the dispatcher after commit,
by the relay, and by an operator's replay.

Runs carry only the event id and the booking uid as parameters (the UI shows parameters to
every operator) and are tagged `booking:<uid>` and with what happened to the booking
(`created`, `confirmed`, `rejected`, `cancelled`, `paid`). A dispatch is idempotent on
`<event id>:<deployment>`; a replay is a new run on purpose, tagged `replay`.

A message held back for an earlier one of its booking is sent by a due-work sweep started
as soon as the earlier one is settled (`start_due_work`), not at the next scheduled sweep.
"""

from datetime import datetime
from uuid import UUID

from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.client.schemas.objects import FlowRun

from deployments.names import DELIVER_DUE_WORK, DeploymentName, booking_tag, idempotency_key

REPLAY_TAG = "replay"
RELEASE_TAG = "release"
PLANNED_TAG = "planned"


async def create_event_run(
    client: PrefectClient,
    deployment_id: UUID,
    target: DeploymentName,
    *,
    event_id: str,
    booking_uid: str,
    event: str = "CREATED",
    replay: bool = False,
) -> FlowRun:
    """A run of `target` for one outbox event; a repeat of a dispatch returns the same run."""
    return await client.create_flow_run_from_deployment(
        deployment_id,
        parameters={"event_id": event_id, "booking_uid": booking_uid},
        idempotency_key=None if replay else idempotency_key(event_id, target),
        # The name the flow's `flow_run_name` gives it when it starts, from the first moment.
        name=f"{target.name}-{booking_uid}",
        tags=[booking_tag(booking_uid), event.lower(), *([REPLAY_TAG] if replay else [])],
    )


def start_due_work(client: SyncPrefectClient, *, key: str, booking_uids: list[str]) -> FlowRun:
    """A due-work sweep now, for the messages of `booking_uids` held back for an earlier one
    that has just settled; once per `key` (what settled). It queues behind a running sweep
    (the deployment runs one at a time). Tagged `release` and with each booking's uid, which
    is not `booking:<uid>`: the sweep is not one of the booking's runs."""
    deployment = client.read_deployment_by_name(DELIVER_DUE_WORK.full_name)
    return client.create_flow_run_from_deployment(
        deployment.id,
        idempotency_key=f"release:{key}",
        tags=[RELEASE_TAG, *(f"release:{uid}" for uid in booking_uids[:10])],
    )


def schedule_due_work(client: SyncPrefectClient, deployment_id: UUID, at: datetime) -> FlowRun:
    """A due-work sweep scheduled at `at`, because work falls due then; once per `at`, whoever
    asks. Tagged `planned`: the deployment's own schedule is only the net under these."""
    from prefect.states import Scheduled

    return client.create_flow_run_from_deployment(
        deployment_id,
        state=Scheduled(scheduled_time=at),
        # As the flow names a sweep when it starts; the UI lists the planned one by it.
        name=f"due-work-{at:%Y%m%d-%H%M%S}",
        idempotency_key=f"planned:{at:%Y-%m-%dT%H:%M:%SZ}",
        tags=[PLANNED_TAG],
    )

"""The one way a booking event's deployment run is created: by the dispatcher after commit,
by the relay, and by an operator's replay.

Runs carry only the event id and the booking uid as parameters (the UI shows parameters to
every operator) and are tagged `booking:<uid>` and with what happened to the booking
(`created`, `confirmed`, `rejected`, `cancelled`, `paid`). A dispatch is idempotent on
`<event id>:<deployment>`; a replay is a new run on purpose, tagged `replay`.
"""

from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun

from deployments.names import DeploymentName, booking_tag, idempotency_key

REPLAY_TAG = "replay"


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

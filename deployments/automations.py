"""The Prefect automations the pipeline relies on, created (or updated) by name:

- "booking: crash silent runs": a flow run that is Running and sends no heartbeat for 90 s
  (its process or its whole worker was killed, the machine was lost) is marked Crashed.
  This is Prefect's documented zombie-run automation, also armed by the Running state; the
  worker sets runs to send a heartbeat every 30 s (`python -m deployments.worker`).
- "booking: finish crashed runs": when any post-commit run crashes, the outbox relay runs at
  once and restarts it, instead of at its next five-minute schedule.

    python -m deployments.automations     # after `prefect deploy --all`, with PREFECT_API_URL
"""

import logging
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, RunDeployment
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

from deployments.names import OUTBOX_RELAY

logger = logging.getLogger(__name__)
SILENCE = timedelta(seconds=90)
FINAL = ("Completed", "Failed", "Cancelled", "Crashed")


def automations(relay_deployment_id: str) -> list[Automation]:
    runs = ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]})
    return [
        Automation(
            name="booking: crash silent runs",
            description="Mark a flow run Crashed when its heartbeats stop.",
            trigger=EventTrigger(
                match=runs,
                # Running opens the window too: a run killed before its first heartbeat
                # reached the server (events are sent in the background) is caught as well.
                after={"prefect.flow-run.heartbeat", "prefect.flow-run.Running"},
                expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in FINAL)},
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=SILENCE,
            ),
            actions=[
                ChangeFlowRunState(
                    state=StateType.CRASHED,
                    message=f"no heartbeat for {SILENCE.seconds} s: its process is gone",
                )
            ],
        ),
        Automation(
            name="booking: finish crashed runs",
            description="Run the outbox relay when a post-commit run crashes; it restarts it.",
            trigger=EventTrigger(
                match=runs,
                match_related=ResourceSpecification(
                    {
                        "prefect.resource.role": "tag",
                        "prefect.resource.id": "prefect.tag.post-commit",
                    }
                ),
                expect={"prefect.flow-run.Crashed"},
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=[RunDeployment(source="selected", deployment_id=relay_deployment_id)],
        ),
    ]


def ensure_automations() -> list[str]:
    """Create the automations, replacing any of the same name; return their names."""
    with get_client(sync_client=True) as client:
        relay = client.read_deployment_by_name(OUTBOX_RELAY.full_name)
        for automation in automations(str(relay.id)):
            for existing in client.read_automations_by_name(automation.name):
                client.delete_automation(existing.id)
            automation.create()
    return [a.name for a in automations(str(relay.id))]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ensure_automations():
        logger.info("automation ready: %s", name)

"""The Prefect automations the pipeline relies on, created (or updated) by name:

- "booking: crash silent runs": a flow run that is Running and sends no heartbeat for
  `BOOKING_RUN_SILENCE_SECONDS` (90 s; its process or its whole worker was killed, the
  machine was lost) is marked Crashed.
  This is Prefect's documented zombie-run automation, also armed by the Running state; the
  worker sets runs to send a heartbeat every 30 s (`python -m worker`).
- "booking: finish crashed runs": when any post-commit run crashes, the outbox relay runs at
  once and restarts it, instead of at its next five-minute schedule.

    python -m deployments.automations     # after `prefect deploy --all`, with PREFECT_API_URL

It also removes the tag concurrency limits earlier versions created for the outside services
(`FORMER_TAG_LIMITS`): their caps are now held in the bookings database (tasks/caps.py).
"""

import logging
from datetime import timedelta

from prefect.automations import Automation, AutomationCore
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import TERMINAL_STATES, StateType
from prefect.events.actions import ChangeFlowRunState, RunDeployment
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound

from deployments.names import FORMER_TAG_LIMITS, OUTBOX_RELAY

logger = logging.getLogger(__name__)
# The events of a run reaching a final state (`prefect.flow-run.Completed`, ...).
FINAL_EVENTS = {f"prefect.flow-run.{state.value.title()}" for state in TERMINAL_STATES}


def automations(relay_deployment_id: str, silence: timedelta) -> list[Automation]:
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
                expect={"prefect.flow-run.heartbeat", *FINAL_EVENTS},
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=silence,
            ),
            actions=[
                ChangeFlowRunState(
                    state=StateType.CRASHED,
                    message=f"no heartbeat for {silence.seconds} s: its process is gone",
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


def ensure_automations(client: SyncPrefectClient, silence: timedelta) -> list[str]:
    """Create the automations, replacing any of the same name; return their names."""
    relay = client.read_deployment_by_name(OUTBOX_RELAY.full_name)
    wanted = automations(str(relay.id), silence)
    for automation in wanted:
        for existing in client.read_automations_by_name(automation.name):
            client.delete_automation(existing.id)
        client.create_automation(AutomationCore(**automation.model_dump(exclude={"id"})))
    return [automation.name for automation in wanted]


def remove_former_tag_limits(client: SyncPrefectClient) -> list[str]:
    """Delete the outside services' tag concurrency limits an earlier version created; no
    step carries those tags any more. Returns the tags whose limit was there."""
    removed = []
    for tag in FORMER_TAG_LIMITS:
        try:
            client.delete_concurrency_limit_by_tag(tag)
        except ObjectNotFound:
            continue
        removed.append(tag)
    return removed


if __name__ == "__main__":
    from booking.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with get_client(sync_client=True) as prefect:
        for tag in remove_former_tag_limits(prefect):
            logger.info("tag concurrency limit removed: %s (now BOOKING_PROVIDER_CAPS)", tag)
        silence_window = timedelta(seconds=get_settings().run_silence_seconds)
        for name in ensure_automations(prefect, silence_window):
            logger.info("automation ready: %s", name)

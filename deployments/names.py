"""Every flow and deployment name, defined once. prefect.yaml must match (a test checks).

Kept free of heavy imports: flow modules import it, and each flow run is a fresh process.
"""

from dataclasses import dataclass

WORK_POOL = "booking-pool"


@dataclass(frozen=True)
class DeploymentName:
    flow: str
    name: str

    @property
    def full_name(self) -> str:
        """`<flow>/<deployment>`, as the Prefect API and CLI name a deployment."""
        return f"{self.flow}/{self.name}"


POST_COMMIT = DeploymentName("booking-post-commit", "post-commit")
WEBHOOKS = DeploymentName("booking-post-commit-webhooks", "webhooks")
INTEGRATIONS = DeploymentName("booking-post-commit-integrations", "integrations")
SCHEDULING = DeploymentName("booking-post-commit-scheduling", "scheduling")
DELIVER_DUE_WORK = DeploymentName("deliver-due-work", "deliver-due-work")
OUTBOX_RELAY = DeploymentName("outbox-relay", "outbox-relay")
RECOVER_DELIVERIES = DeploymentName("recover-deliveries", "recover-deliveries")
RETENTION = DeploymentName("retention", "retention")

CONCERNS = (WEBHOOKS, INTEGRATIONS, SCHEDULING)
ALL = (POST_COMMIT, *CONCERNS, DELIVER_DUE_WORK, OUTBOX_RELAY, RECOVER_DELIVERIES, RETENTION)

# What one committed booking starts, by the `dispatch_mode` setting.
ARRANGEMENTS: dict[str, tuple[DeploymentName, ...]] = {
    "bundled": (POST_COMMIT,),
    "per-concern": CONCERNS,
}


def idempotency_key(event_id: str, deployment: DeploymentName) -> str:
    """One run per outbox event and deployment, however often it is dispatched."""
    return f"{event_id}:{deployment.name}"


def booking_tag(booking_uid: str) -> str:
    return f"booking:{booking_uid}"


# Outside services' caps (how many calls at once) are held in the bookings database,
# not by Prefect tag concurrency limits: BOOKING_PROVIDER_CAPS, tasks/caps.py.
FORMER_TAG_LIMITS = ("webhooks", "push", "chat", "customerio", "analytics", "reminders")

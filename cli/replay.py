"""Replaying a booking: its post-commit work as a new deployment run on its latest outbox
event (or one picked by id), tagged like every run of the booking (`booking:<uid>`) and
`replay`. Its steps are idempotent: what was done is not done twice (a delivered webhook is
not sent again), what was not is done now. To send a delivered message again, replay the
message (`flows/replay_message.py`). After a subscriber's outage, `start_recovery` sends
again everything to it that ended FAILED in a window, as one run (`flows/recover_deliveries.py`).
"""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from booking.models import OutboxEvent, WebhookSubscription
from booking.timeutil import utcnow
from deployments.names import (
    INTEGRATIONS,
    POST_COMMIT,
    RECOVER_DELIVERIES,
    SCHEDULING,
    WEBHOOKS,
    DeploymentName,
)
from handoff.runs import create_event_run

CONCERNS: dict[str, DeploymentName] = {
    "all": POST_COMMIT,
    "webhooks": WEBHOOKS,
    "integrations": INTEGRATIONS,
    "scheduling": SCHEDULING,
}


class ReplayError(LookupError):
    """Nothing to replay as asked; the message says why."""


@dataclass(frozen=True)
class ReplayedRun:
    flow_run_id: str
    name: str
    url: str


def replay_booking(
    session: Session, booking_uid: str, concern: str = "all", event_id: str | None = None
) -> ReplayedRun:
    """Start a new run of the concern's deployment for one of the booking's outbox events:
    `event_id`, or the latest (a booking has one event per change: created, confirmed, ...)."""
    from prefect.settings import PREFECT_UI_URL

    target = CONCERNS.get(concern)
    if target is None:
        raise ReplayError(f"concern is one of {', '.join(CONCERNS)}")
    query = select(OutboxEvent).where(OutboxEvent.booking_uid == booking_uid)
    if event_id is not None:
        query = query.where(OutboxEvent.id == event_id)
    event = session.exec(query.order_by(col(OutboxEvent.created_at).desc())).first()
    if event is None and event_id is not None:
        raise ReplayError("this booking has no event with this id")
    if event is None:
        raise ReplayError("no booking with this uid has post-commit work")
    kind = event.payload.get("event", "CREATED")
    run = asyncio.run(_start(target, event.id, booking_uid, kind))
    ui = PREFECT_UI_URL.value() or ""
    return ReplayedRun(str(run.id), run.name, f"{ui}/runs/flow-run/{run.id}")


async def _start(target: DeploymentName, event_id: str, booking_uid: str, event: str):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        deployment = await client.read_deployment_by_name(target.full_name)
        return await create_event_run(
            client,
            deployment.id,
            target,
            event_id=event_id,
            booking_uid=booking_uid,
            event=event,
            replay=True,
        )


MAX_RECOVERY_WINDOW = timedelta(days=14)


def start_recovery(
    session: Session, subscription_id: int, since: datetime, until: datetime | None = None
) -> ReplayedRun:
    """Start a run of `recover-deliveries` for one subscription's messages that ended FAILED
    between `since` and `until` (now), at most 14 days back."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_UI_URL

    now = utcnow()
    since, until = _utc(since), _utc(until) if until else None
    if session.get(WebhookSubscription, subscription_id) is None:
        raise ReplayError(f"no subscription with id {subscription_id}")
    if since < now - MAX_RECOVERY_WINDOW:
        raise ReplayError(f"--since is at most {MAX_RECOVERY_WINDOW.days} days back")
    if since >= (until or now):
        raise ReplayError("--since must be before --until (or now)")
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(RECOVER_DELIVERIES.full_name)
        run = client.create_flow_run_from_deployment(
            deployment.id,
            parameters={
                "subscription_id": subscription_id,
                "since": since.isoformat(),
                "until": until.isoformat() if until else None,
            },
            name=f"recover-subscription-{subscription_id}",
        )
    ui = PREFECT_UI_URL.value() or ""
    return ReplayedRun(str(run.id), run.name, f"{ui}/runs/flow-run/{run.id}")


def _utc(moment: datetime) -> datetime:
    """A time given without a zone is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

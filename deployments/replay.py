"""Replaying: a booking's post-commit work as a new deployment run, or one webhook message
sent again with its original `webhook-id` and body.

A booking replay starts a new run of the chosen deployment on the booking's latest outbox
event, tagged like every run of the booking (`booking:<uid>`) and `replay`. Its steps are
idempotent: what was done is not done twice (a delivered webhook is not sent again), what
was not is done now. To send a delivered message again, replay the message.
"""

from dataclasses import dataclass

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, col, func, select

from booking.db import configured_engine, session_scope
from booking.models import (
    Booking,
    OutboxEvent,
    ScheduledTrigger,
    WebhookDelivery,
    WebhookRedelivery,
    WebhookSubscription,
)
from booking.outbox import load_payload
from booking.snapshot import build_payload
from deployments.names import (
    INTEGRATIONS,
    POST_COMMIT,
    SCHEDULING,
    WEBHOOKS,
    DeploymentName,
    booking_tag,
)
from tasks.delivery.body import booking_data
from tasks.delivery.message import (
    Subscriber,
    WebhookMessage,
    booking_messages,
    message_id,
    trigger_message,
    url_host,
)
from tasks.delivery.send import DeliveryReport, send_webhook

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


def replay_booking(session: Session, booking_uid: str, concern: str = "all") -> ReplayedRun:
    """Start a new run of the concern's deployment for the booking's latest outbox event."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_UI_URL

    target = CONCERNS.get(concern)
    if target is None:
        raise ReplayError(f"concern is one of {', '.join(CONCERNS)}")
    event = session.exec(
        select(OutboxEvent)
        .where(OutboxEvent.booking_uid == booking_uid)
        .order_by(col(OutboxEvent.created_at).desc())
    ).first()
    if event is None:
        raise ReplayError("no booking with this uid has post-commit work")
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(target.full_name)
        run = client.create_flow_run_from_deployment(
            deployment.id,
            parameters={"event_id": event.id, "booking_uid": booking_uid},
            name=f"{target.name}-{booking_uid}-replay",
            tags=[booking_tag(booking_uid), "replay"],
        )
    ui = PREFECT_UI_URL.value() or ""
    return ReplayedRun(str(run.id), run.name, f"{ui}/runs/flow-run/{run.id}")


def find_message(session: Session, webhook_id: str) -> WebhookMessage:
    """The message a `webhook-id` names, rebuilt from what it was made of: the stored
    redelivery, the booking's outbox event, or the booking's scheduled trigger."""
    if redelivery := session.exec(
        select(WebhookRedelivery).where(WebhookRedelivery.message_id == webhook_id)
    ).first():
        return WebhookMessage.model_validate(redelivery.message)
    sent = session.exec(
        select(WebhookDelivery).where(WebhookDelivery.message_id == webhook_id)
    ).first()
    if sent is None:
        raise ReplayError("no message with this webhook-id in the delivery log")
    subscription = session.get(WebhookSubscription, sent.subscription_id)
    subscriber = Subscriber(sent.subscription_id, url_host(subscription.subscriber_url))
    for event in session.exec(
        select(OutboxEvent).where(OutboxEvent.booking_uid == sent.booking_uid)
    ):
        if message_id(event.id, sent.subscription_id, sent.trigger_event) == webhook_id:
            payload = load_payload(session, event.id)
            return booking_messages(payload, sent.trigger_event, [subscriber])[0]
    booking = session.exec(select(Booking).where(Booking.uid == sent.booking_uid)).one()
    for row in session.exec(
        select(ScheduledTrigger).where(ScheduledTrigger.booking_id == booking.id)
    ):
        if message_id(f"trigger-{row.id}", row.subscription_id, row.trigger_event) == webhook_id:
            payload = build_payload(session, booking, event_id=f"trigger-{row.id}")
            return trigger_message(
                trigger_id=row.id,  # type: ignore[arg-type]
                subscription_id=row.subscription_id,
                host=subscriber.host,
                trigger=row.trigger_event,
                booking_id=booking.id,  # type: ignore[arg-type]
                booking_uid=booking.uid,
                due_at=row.due_at,
                data=booking_data(payload, row.trigger_event),
            )
    raise ReplayError("the booking event this message was made of is gone")


@task(name="send webhook message again", task_run_name="resend {webhook_id}", cache_policy=NO_CACHE)
def resend(webhook_id: str) -> DeliveryReport:
    with session_scope(configured_engine()) as session:
        message = find_message(session, webhook_id)
        attempts = session.exec(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.message_id == webhook_id)
        ).one()
    report = send_webhook(message, attempt_no=attempts + 1, resend=True)
    get_run_logger().info("%s: %s", message.host, report.outcome)
    return report


@flow(name="replay-webhook-message", flow_run_name="replay {webhook_id}", log_prints=False)
def replay_message(webhook_id: str) -> DeliveryReport:
    """Send one message again, with its original `webhook-id` and body, logged as an attempt."""
    return resend(webhook_id)

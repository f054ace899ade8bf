"""An operator's replay of one webhook message: sent again at once, with its original
`webhook-id` and body, rebuilt from what it was made of, and logged as one more attempt."""

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, func, select

from booking.db import transaction
from booking.enums import WebhookTrigger
from booking.models import (
    Attendee,
    Booking,
    OutboxEvent,
    ScheduledTrigger,
    WebhookDelivery,
    WebhookRedelivery,
    WebhookSubscription,
)
from booking.outbox import load_payload
from booking.payload import PostCommitPayload
from booking.snapshot import build_payload
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
from tasks.errors import PermanentError


class MessageNotFound(PermanentError, LookupError):
    """No message with this `webhook-id` can be rebuilt; the message says why."""


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
        raise MessageNotFound("no message with this webhook-id in the delivery log")
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
                data=booking_data(
                    payload, row.trigger_event, no_show=_recorded_no_show(session, row, payload)
                ),
            )
    raise MessageNotFound("the booking event this message was made of is gone")


def _recorded_no_show(
    session: Session, row: ScheduledTrigger, payload: PostCommitPayload
) -> list[str]:
    """Who a sent no-show message named, as its sending recorded it on the booking: the
    attendees marked absent, or the hosts when the booking is marked a host no-show."""
    if row.trigger_event == WebhookTrigger.AFTER_GUESTS_CAL_VIDEO_NO_SHOW:
        absent = select(Attendee).where(Attendee.booking_id == row.booking_id, Attendee.no_show)
        return [attendee.email.lower() for attendee in session.exec(absent)]
    booking = session.get_one(Booking, row.booking_id)
    if row.trigger_event == WebhookTrigger.AFTER_HOSTS_CAL_VIDEO_NO_SHOW and booking.no_show_host:
        return [host.email.lower() for host in payload.hosts]
    return []


@task(name="send webhook message again", task_run_name="resend {webhook_id}", cache_policy=NO_CACHE)
def resend(webhook_id: str) -> DeliveryReport:
    """Send the message now, even if it was delivered before."""
    with transaction() as session:
        message = find_message(session, webhook_id)
        attempts = session.exec(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.message_id == webhook_id)
        ).one()
    report = send_webhook(message, attempt_no=attempts + 1, resend=True)
    get_run_logger().info("%s: %s", message.host, report.outcome)
    return report

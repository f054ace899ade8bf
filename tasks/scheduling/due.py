"""Due work of the scheduling concern: meeting and no-show triggers, and reminders, each
delivered when its time has come against the booking's current state (a booking no longer
ACCEPTED has its rows skipped, not sent). How a row ends is recorded by `tasks.duework`.
"""

from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlmodel import select

from booking.db import transaction
from booking.enums import NO_SHOW_TRIGGERS, ReminderMethod, WebhookTrigger
from booking.i18n import local_time
from booking.models import (
    Attendee,
    Booking,
    ScheduledTrigger,
    User,
    WebhookSubscription,
    WorkflowReminder,
    WorkflowStep,
)
from booking.settings import get_settings
from booking.snapshot import build_payload
from tasks.delivery.body import booking_data
from tasks.delivery.message import WebhookMessage, trigger_message, url_host
from tasks.delivery.send import send_webhook
from tasks.duework import Delivered, Outcome, closed_reason, settle
from tasks.scheduling.sending import (
    attendees_who_joined,
    reminder_text,
    send_email,
    send_sms,
)


@task(
    name="deliver due webhook trigger",
    task_run_name="deliver due trigger #{trigger_id}",
    cache_policy=NO_CACHE,
)
def deliver_due_trigger(trigger_id: int) -> Outcome:
    """Send one MEETING_STARTED/ENDED or no-show webhook whose time has come."""
    return settle(ScheduledTrigger, trigger_id, _deliver_trigger)


@dataclass(frozen=True)
class DueTrigger:
    """A trigger ready to send, and for a no-show check the people it reports absent."""

    message: WebhookMessage
    attempt_no: int
    booking_id: int
    absent: set[str]


def _deliver_trigger(trigger_id: int) -> Delivered:
    due = _prepare_trigger(trigger_id)
    if isinstance(due, str):
        return "skipped", due
    report = send_webhook(due.message, attempt_no=due.attempt_no)
    if not report.sent:
        return "skipped", f"subscription {report.outcome}"
    if due.message.trigger in NO_SHOW_TRIGGERS:
        _mark_no_show(due.booking_id, due.message.trigger, due.absent)
    return "sent", None


def _prepare_trigger(trigger_id: int) -> DueTrigger | str:
    """The trigger's message against the booking's current state, or why it is skipped."""
    with transaction() as session:
        row = session.get_one(ScheduledTrigger, trigger_id)
        booking = session.get(Booking, row.booking_id)
        if reason := closed_reason(booking):
            return reason
        assert booking is not None and booking.id is not None
        subscription = session.get(WebhookSubscription, row.subscription_id)
        if subscription is None or not subscription.active:
            return "subscription no longer active"
        payload = build_payload(session, booking, event_id=f"trigger-{trigger_id}")
        absent: set[str] = set()
        if row.trigger_event in NO_SHOW_TRIGGERS:
            if not get_settings().attendance_base_url:
                return "no meeting attendance source configured"
            absent = set(_absentees(booking, row.trigger_event, payload))
            if not absent:
                return "everyone expected attended"
        data = booking_data(payload, row.trigger_event, no_show=absent)
        message = trigger_message(
            trigger_id=trigger_id,
            subscription_id=row.subscription_id,
            host=url_host(subscription.subscriber_url),
            trigger=row.trigger_event,
            booking_id=booking.id,
            booking_uid=booking.uid,
            due_at=row.due_at,
            data=data,
        )
        return DueTrigger(message, row.attempts + 1, booking.id, absent)


def _absentees(booking: Booking, trigger: WebhookTrigger, payload) -> list[str]:
    joined = attendees_who_joined(get_settings(), booking.uid)
    if trigger == WebhookTrigger.AFTER_HOSTS_CAL_VIDEO_NO_SHOW:
        expected = [h.email.lower() for h in payload.hosts]
    else:
        expected = [a.email.lower() for a in payload.attendees]
    return [email for email in expected if email not in joined]


def _mark_no_show(booking_id: int, trigger: WebhookTrigger, absent: set[str]) -> None:
    with transaction() as session:
        if trigger == WebhookTrigger.AFTER_HOSTS_CAL_VIDEO_NO_SHOW:
            booking = session.get(Booking, booking_id)
            booking.no_show_host = True
            session.add(booking)
            return
        for attendee in session.exec(select(Attendee).where(Attendee.booking_id == booking_id)):
            if attendee.email.lower() in absent:
                attendee.no_show = True
                session.add(attendee)


@task(
    name="send due reminder",
    task_run_name="send due reminder #{reminder_id}",
    cache_policy=NO_CACHE,
)
def send_due_reminder(reminder_id: int) -> Outcome:
    """Email or text one reminder whose time has come, in the recipient's language and zone."""
    return settle(WorkflowReminder, reminder_id, _send_reminder)


def _send_reminder(reminder_id: int) -> Delivered:
    settings = get_settings()
    with transaction() as session:
        row = session.get(WorkflowReminder, reminder_id)
        booking = session.get(Booking, row.booking_id)
        if reason := closed_reason(booking):
            return "skipped", reason
        organizer = session.get(User, booking.user_id)
        step = session.get(WorkflowStep, row.workflow_step_id) if row.workflow_step_id else None
        context = {
            "name": row.recipient_name or "",
            "title": booking.title,
            "organizer": organizer.name if organizer else "",
            "when": local_time(booking.start_time, row.time_zone, row.locale),
            "location": booking.location or "-",
        }
        subject, body = reminder_text(
            locale=row.locale,
            context=context,
            subject=step.subject_template if step else None,
            body=step.body_template if step else None,
        )
        method, recipient = row.method, row.recipient
    if method == ReminderMethod.SMS:
        send_sms(settings, to=recipient, body=body or subject)
    else:
        send_email(
            settings,
            to=recipient,
            subject=subject,
            body=body,
            message_key=f"reminder-{reminder_id}",
        )
    get_run_logger().info("reminder %s sent by %s", reminder_id, method.value.lower())
    return "sent", None

"""Due work: claim rows whose time has come, deliver each, and record how it ended.

Rows are re-read with their booking's current state: a booking cancelled since it was
planned has its rows skipped, not sent. A failed row goes back to PENDING for a later sweep
until `due_max_attempts`, then stays FAILED with its last error.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, col, select

from booking.claims import claim
from booking.db import configured_engine, session_scope
from booking.enums import (
    NO_SHOW_TRIGGERS,
    BookingStatus,
    ReminderMethod,
    WebhookTrigger,
    WorkStatus,
)
from booking.i18n import local_time
from booking.models import (
    Attendee,
    Booking,
    ScheduledTrigger,
    User,
    WebhookRedelivery,
    WebhookSubscription,
    WorkflowReminder,
    WorkflowStep,
)
from booking.models.work import DueWork
from booking.settings import get_settings
from booking.snapshot import build_payload
from booking.timeutil import utcnow
from tasks.delivery import store
from tasks.delivery.body import booking_data
from tasks.delivery.message import WebhookMessage, trigger_message, url_host
from tasks.delivery.send import send_webhook
from tasks.retry import is_transient
from tasks.scheduling.sending import (
    attendees_who_joined,
    reminder_text,
    send_email,
    send_sms,
)

Outcome = Literal["sent", "skipped"]


@dataclass(frozen=True)
class Claimed:
    """Ids of the rows one sweep leased."""

    triggers: list[int]
    reminders: list[int]
    redeliveries: list[int]


@task(name="claim due work", cache_policy=NO_CACHE)
def claim_due(now: datetime) -> Claimed:
    """Lease the due webhook triggers and reminders this sweep will deliver."""
    settings = get_settings()
    lease = now + timedelta(seconds=settings.due_lease_seconds)

    def due(session: Session, model: type[DueWork]) -> list[int]:
        return claim(
            session,
            model,
            conditions=(
                col(model.status) == WorkStatus.PENDING,
                col(model.due_at) <= now,
            ),
            order_by=model.due_at,
            limit=settings.due_batch_size,
            now=now,
            lease_until=lease,
        )

    with session_scope(configured_engine()) as session:
        return Claimed(
            triggers=due(session, ScheduledTrigger),
            reminders=due(session, WorkflowReminder),
            redeliveries=due(session, WebhookRedelivery),
        )


# After `attempts` failed sweeps: when to try again (not before the row's due time), or None
# to leave the row FAILED.
Schedule = Callable[[int], datetime | None]
ANY_TIME = datetime.min.replace(tzinfo=UTC)


def _next_sweep(attempts: int) -> datetime | None:
    """Due work is tried by the next sweeps (its due time kept), `due_max_attempts` times."""
    return ANY_TIME if attempts < get_settings().due_max_attempts else None


def _finish(
    model: type[DueWork],
    row_id: int,
    outcome: str,
    detail: str | None = None,
    schedule: Schedule = _next_sweep,
) -> None:
    with session_scope(configured_engine()) as session:
        row = session.get_one(model, row_id)
        row.claimed_until = None
        if outcome == "sent":
            row.status, row.sent_at = WorkStatus.SENT, utcnow()
        elif outcome == "skipped":
            row.status, row.skip_reason = WorkStatus.SKIPPED, detail
        else:
            row.attempts += 1
            row.last_error = (detail or "")[:500]
            retry_at = schedule(row.attempts)
            if retry_at is None:
                row.status = WorkStatus.FAILED
            else:
                row.status, row.due_at = WorkStatus.PENDING, max(row.due_at, retry_at)
        session.add(row)


def _settle(
    model: type[DueWork],
    row_id: int,
    deliver: Callable[[int], tuple[Outcome, str | None]],
    schedule: Schedule = _next_sweep,
) -> Outcome:
    """Deliver one row and record how it ended; a failure is recorded, then re-raised so
    the task run shows it."""
    try:
        outcome, detail = deliver(row_id)
    except Exception as exc:
        _finish(model, row_id, "failed", f"{type(exc).__name__}: {exc}", schedule)
        raise
    _finish(model, row_id, outcome, detail, schedule)
    return outcome


def _closed_reason(booking: Booking | None) -> str | None:
    if booking is None:
        return "booking no longer exists"
    if booking.status != BookingStatus.ACCEPTED:
        return f"booking is {booking.status.value}"
    return None


@task(
    name="deliver due webhook trigger",
    task_run_name="deliver due trigger #{trigger_id}",
    tags=["webhooks"],
    cache_policy=NO_CACHE,
)
def deliver_due_trigger(trigger_id: int) -> Outcome:
    """Send one MEETING_STARTED/ENDED or no-show webhook whose time has come."""
    return _settle(ScheduledTrigger, trigger_id, _deliver_trigger)


def _deliver_trigger(trigger_id: int) -> tuple[Outcome, str | None]:
    settings = get_settings()
    with session_scope(configured_engine()) as session:
        row = session.get(ScheduledTrigger, trigger_id)
        booking = session.get(Booking, row.booking_id)
        if reason := _closed_reason(booking):
            return "skipped", reason
        subscription = session.get(WebhookSubscription, row.subscription_id)
        if subscription is None or not subscription.active:
            return "skipped", "subscription no longer active"
        payload = build_payload(session, booking, event_id=f"trigger-{row.id}")
        data = booking_data(payload, row.trigger_event)
        if row.trigger_event in NO_SHOW_TRIGGERS:
            if not settings.attendance_base_url:
                return "skipped", "no meeting attendance source configured"
            absent = _absentees(session, booking, row.trigger_event, payload)
            if not absent:
                return "skipped", "everyone expected attended"
            data["noShow"] = [{"email": email} for email in absent]
        message = trigger_message(
            trigger_id=row.id,
            subscription_id=row.subscription_id,
            host=url_host(subscription.subscriber_url),
            trigger=row.trigger_event,
            booking_id=booking.id,
            booking_uid=booking.uid,
            due_at=row.due_at,
            data=data,
        )
        attempt = row.attempts + 1
    report = send_webhook(message, attempt_no=attempt)
    if report.outcome == "delivered" or report.outcome == "already-delivered":
        if row.trigger_event in NO_SHOW_TRIGGERS:
            _mark_no_show(booking.id, row.trigger_event, {e["email"] for e in data["noShow"]})
        return "sent", None
    return "skipped", f"subscription {report.outcome}"


@task(
    name="redeliver webhook",
    task_run_name="redeliver webhook #{redelivery_id}",
    tags=["webhooks"],
    cache_policy=NO_CACHE,
)
def redeliver_webhook(redelivery_id: int, now: datetime) -> Outcome:
    """Send again a message whose in-task retries failed, with its original `webhook-id`
    and body, on the long backoff of `webhook_redelivery_delays_seconds`."""
    delays = get_settings().webhook_redelivery_delays_seconds

    def schedule(attempts: int) -> datetime | None:
        return now + timedelta(seconds=delays[attempts]) if attempts < len(delays) else None

    return _settle(WebhookRedelivery, redelivery_id, _redeliver, schedule)


def _redeliver(redelivery_id: int) -> tuple[Outcome, str | None]:
    settings = get_settings()
    with session_scope(configured_engine()) as session:
        row = session.get_one(WebhookRedelivery, redelivery_id)
        message = WebhookMessage.model_validate(row.message)
        attempt = settings.webhook_retries + 1 + row.attempts + 1
    try:
        report = send_webhook(message, attempt_no=attempt)
    except Exception as exc:
        if is_transient(exc):
            _deactivate_if_failing_too_long(message)
        raise
    if report.outcome in ("delivered", "already-delivered"):
        return "sent", None
    return "skipped", f"subscription {report.outcome}"


def _deactivate_if_failing_too_long(message: WebhookMessage) -> None:
    """A subscription whose every delivery failed for `webhook_disable_after_hours` is
    deactivated with the reason recorded; its pending redeliveries are then skipped."""
    hours = get_settings().webhook_disable_after_hours
    with session_scope(configured_engine()) as session:
        since = store.failing_since(session, message.subscription_id)
        if since is None or utcnow() - since < timedelta(hours=hours):
            return
        store.deactivate(
            session,
            message.subscription_id,
            f"every delivery failed since {since:%Y-%m-%d %H:%M} UTC ({hours:g} h)",
        )
    get_run_logger().warning(
        "%s failed every delivery for %g hours: subscription #%s deactivated",
        message.host,
        hours,
        message.subscription_id,
    )


def _absentees(session: Session, booking: Booking, trigger: WebhookTrigger, payload) -> list[str]:
    joined = attendees_who_joined(get_settings(), booking.uid)
    if trigger == WebhookTrigger.AFTER_HOSTS_CAL_VIDEO_NO_SHOW:
        expected = [h.email.lower() for h in payload.hosts]
    else:
        expected = [a.email.lower() for a in payload.attendees]
    return [email for email in expected if email not in joined]


def _mark_no_show(booking_id: int, trigger: WebhookTrigger, absent: set[str]) -> None:
    with session_scope(configured_engine()) as session:
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
    tags=["reminders"],
    cache_policy=NO_CACHE,
)
def send_due_reminder(reminder_id: int) -> Outcome:
    """Email or text one reminder whose time has come, in the recipient's language and zone."""
    return _settle(WorkflowReminder, reminder_id, _send_reminder)


def _send_reminder(reminder_id: int) -> tuple[Outcome, str | None]:
    settings = get_settings()
    with session_scope(configured_engine()) as session:
        row = session.get(WorkflowReminder, reminder_id)
        booking = session.get(Booking, row.booking_id)
        if reason := _closed_reason(booking):
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


@task(name="summarise sweep", cache_policy=NO_CACHE)
def summarise_sweep(now: datetime, outcomes: list[Outcome | BaseException]) -> dict[str, int]:
    """A table in the UI of what this sweep claimed, sent, skipped and failed."""
    counts = {
        "claimed": len(outcomes),
        "sent": outcomes.count("sent"),
        "skipped": outcomes.count("skipped"),
        "failed": sum(isinstance(outcome, BaseException) for outcome in outcomes),
    }
    create_table_artifact(
        key="deliver-due-work", table=[counts], description=f"Due work as of {now.isoformat()}"
    )
    get_run_logger().info(", ".join(f"{n} {k}" for k, n in counts.items()))
    return counts

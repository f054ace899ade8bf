"""The scheduling concern's steps: store the reminders and no-show checks a booking gets, as
rows due later, in one transaction; on a cancellation, cancel everything the booking had
planned and not yet sent; on a cancellation or rejection, send its notices at once, in one step that
records each message sent. Planning itself is pure (tasks/scheduling/plan.py).
"""

from prefect import get_run_logger, task
from sqlmodel import Session, col, or_, select, update

from booking.db import insert_once, transaction
from booking.enums import NO_SHOW_TRIGGERS, BookingEvent, ReminderMethod, TimeUnit, WorkStatus
from booking.i18n import local_time, translate
from booking.models import (
    NOTICE_KEY_PREFIX,
    ScheduledTrigger,
    Workflow,
    WorkflowActivation,
    WorkflowReminder,
    WorkflowStep,
)
from booking.payload import PostCommitPayload, cancellation_note
from booking.settings import get_settings
from booking.timeutil import utcnow
from tasks.delivery import store
from tasks.duework import plan_next_sweep
from tasks.retry import is_transient, step_policy
from tasks.scheduling.plan import (
    Notice,
    PlannedReminder,
    StepRule,
    mandatory_reminders,
    offset,
    plan_notices,
    plan_workflow_reminders,
)
from tasks.scheduling.sending import Mailer, reminder_text, send_sms


@task(name="schedule reminders and no-show checks", **step_policy("database"))
def schedule_later_work(payload: PostCommitPayload) -> str:
    """On a reschedule, cancel the original's pending reminders; then store the mandatory
    reminder, the workflow reminders and the no-show checks of this booking (once each)."""
    with transaction() as session:
        replaces = payload.event == BookingEvent.CREATED and payload.is_reschedule
        cancelled = cancel_original_reminders(session, payload) if replaces else 0
        rules = load_rules(session, payload)
        mandatory = store_reminders(session, payload, mandatory_reminders(payload, rules))
        workflow = store_reminders(session, payload, plan_workflow_reminders(payload, rules))
        no_show = store_no_show_checks(session, payload)
    if mandatory or workflow or no_show:
        plan_next_sweep()
    summary = (
        f"{mandatory} mandatory and {workflow} workflow reminders, {no_show} no-show checks"
        f" stored for booking {payload.booking_uid}"
        + (
            f"; {cancelled} reminders of {payload.reschedule.original_uid} cancelled"
            if payload.reschedule
            else ""
        )
    )
    get_run_logger().info("%s", summary)
    return summary


def load_rules(session: Session, payload: PostCommitPayload) -> list[StepRule]:
    """Steps of the active workflows of this event type, its host or its team."""
    owners = [col(Workflow.user_id) == payload.organizer.id]
    if payload.team_id is not None:
        owners.append(col(Workflow.team_id) == payload.team_id)
    activated = select(WorkflowActivation.workflow_id).where(
        WorkflowActivation.event_type_id == payload.event_type.id
    )
    rows = session.exec(
        select(Workflow, WorkflowStep)
        .join(WorkflowStep, col(WorkflowStep.workflow_id) == Workflow.id)
        .where(
            col(Workflow.active),
            or_(col(Workflow.id).in_(activated), col(Workflow.active_on_all) & or_(*owners)),
        )
        .order_by(col(WorkflowStep.id))
    ).all()
    return [
        StepRule(
            step_id=step.id,  # type: ignore[arg-type]
            trigger=workflow.trigger,
            offset=offset(workflow.time, workflow.time_unit),
            action=step.action,
            send_to=step.send_to,
            subject=step.subject_template,
            body=step.body_template,
        )
        for workflow, step in rows
    ]


def cancel_original_reminders(session: Session, payload: PostCommitPayload) -> int:
    """On a reschedule, the replaced booking's pending reminders are not sent."""
    assert payload.reschedule is not None
    result = session.exec(  # type: ignore[call-overload]
        update(WorkflowReminder)
        .where(
            col(WorkflowReminder.booking_id) == payload.reschedule.original_booking_id,
            col(WorkflowReminder.status) == WorkStatus.PENDING,
        )
        .values(status=WorkStatus.CANCELLED, skip_reason="booking rescheduled")
    )
    return result.rowcount or 0


def store_reminders(
    session: Session, payload: PostCommitPayload, planned: list[PlannedReminder]
) -> int:
    """Store each planned reminder unless a run before stored it; returns how many are new."""
    return sum(
        insert_once(
            session,
            WorkflowReminder(
                dedupe_key=item.dedupe_key,
                booking_id=payload.booking_id,
                workflow_step_id=item.step_id,
                is_mandatory=item.is_mandatory,
                method=item.method,
                recipient=item.recipient,
                recipient_name=item.recipient_name,
                locale=item.locale,
                time_zone=item.time_zone,
                due_at=item.due_at,
            ),
        )
        for item in planned
    )


def store_no_show_checks(session: Session, payload: PostCommitPayload) -> int:
    """A row due at start + offset for each host/guest no-show subscriber, planned when the
    booking became confirmed."""
    if not payload.plans_confirmed_work:
        return 0
    return store.store_triggers(
        session,
        payload,
        NO_SHOW_TRIGGERS,
        lambda sub, _trigger: (
            payload.start + offset(sub.time or 0, sub.time_unit or TimeUnit.MINUTE)
        ),
    )


@task(name="cancel what the booking had planned", **step_policy("database"))
def cancel_planned_work(payload: PostCommitPayload) -> str:
    """On a cancellation, set every row the booking had planned and not yet sent (reminders,
    meeting triggers, no-show checks) to CANCELLED, with the reason, in one transaction."""
    note = cancellation_note(payload)
    with transaction() as session:
        reminders = store.cancel_pending(session, WorkflowReminder, payload.booking_id, note)
        triggers = store.cancel_pending(session, ScheduledTrigger, payload.booking_id, note)
    summary = (
        f"cancelled {reminders} pending reminders and {triggers} pending triggers"
        f" of booking {payload.booking_uid}"
    )
    get_run_logger().info("%s", summary)
    return summary


def notice_key(payload: PostCommitPayload, notice: Notice) -> str:
    """One per event and recipient: the notice's row, and its email's Message-ID."""
    return f"{payload.event_id}-{notice.label.replace(' ', '-')}"


@task(
    name="send booking notices",
    task_run_name="send {payload.event.value} notices",
    **step_policy("provider"),
)
def send_notices(payload: PostCommitPayload) -> str:
    """Tell each person a cancellation or rejection concerns, in their language and time
    zone: the attendees, the host, and the EVENT_CANCELLED workflow steps' recipients.

    Each message sent is recorded at once as a SENT reminder row of the booking, so a retry
    of this step, or a replay of the event, sends only what was not sent. One recipient's
    failure does not stop the others; the step then fails with it (retried when transient).
    """
    with transaction() as session:
        notices = {
            notice_key(payload, n): n for n in plan_notices(payload, load_rules(session, payload))
        }
        rows = [NOTICE_KEY_PREFIX + key for key in notices]
        done = set(
            session.exec(
                select(WorkflowReminder.dedupe_key).where(
                    col(WorkflowReminder.dedupe_key).in_(rows)
                )
            )
        )
    logger = get_run_logger()
    failed: dict[str, Exception] = {}  # by recipient label
    sent = 0
    with Mailer(get_settings()) as mailer:
        for key, notice in notices.items():
            if NOTICE_KEY_PREFIX + key in done:
                logger.info("%s notice to %s was sent before", notice.kind, notice.label)
                continue
            try:
                send_notice(payload, notice, message_key=key, mailer=mailer)
            except Exception as exc:  # noqa: BLE001 - raised below, once the others are sent
                # The class only: a mail server's answer may quote the address.
                logger.warning(
                    "%s notice to %s not sent (%s)", notice.kind, notice.label, type(exc).__name__
                )
                failed[notice.label] = exc
                continue
            with transaction() as session:
                insert_once(session, sent_row(payload, notice, NOTICE_KEY_PREFIX + key))
            sent += 1
    summary = f"{sent} {payload.event.value} notices sent for booking {payload.booking_uid}"
    if failed:
        logger.error("%s; not sent to %s", summary, ", ".join(failed))
        errors = list(failed.values())
        raise next((exc for exc in errors if is_transient(exc)), errors[0])
    logger.info("%s", summary)
    return summary


def send_notice(
    payload: PostCommitPayload, notice: Notice, *, message_key: str, mailer: Mailer
) -> None:
    """Email (or text) one person that the booking was cancelled or declined; the reason,
    when one was given, is quoted."""
    reason = payload.cancellation_reason if notice.kind == "cancelled" else payload.rejection_reason
    context = {
        "name": notice.name or "",
        "title": payload.title,
        "organizer": payload.organizer.name,
        "when": local_time(payload.start, notice.time_zone, notice.locale),
        "location": payload.location or "-",
        "reason": translate(notice.locale, "reason_line").format(text=reason) if reason else "",
    }
    if notice.subject is None and notice.body is None:
        subject = translate(notice.locale, f"{notice.kind}_subject").format(**context)
        body = translate(notice.locale, f"{notice.kind}_body").format(**context)
    else:
        subject, body = reminder_text(
            locale=notice.locale, context=context, subject=notice.subject, body=notice.body
        )
    if notice.method == ReminderMethod.SMS:
        send_sms(get_settings(), to=notice.recipient, body=body or subject)
    else:
        mailer.send(to=notice.recipient, subject=subject, body=body, message_key=message_key)


def sent_row(payload: PostCommitPayload, notice: Notice, key: str) -> WorkflowReminder:
    """The record of a notice sent: a reminder row of the booking, SENT when it was due."""
    now = utcnow()
    return WorkflowReminder(
        dedupe_key=key,
        booking_id=payload.booking_id,
        workflow_step_id=notice.step_id,
        method=notice.method,
        recipient=notice.recipient,
        recipient_name=notice.name,
        locale=notice.locale,
        time_zone=notice.time_zone,
        due_at=now,
        status=WorkStatus.SENT,
        sent_at=now,
        attempts=1,
    )

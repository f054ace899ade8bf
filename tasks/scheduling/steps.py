"""The steps of the scheduling flow: reminders and no-show checks stored as rows due later."""

from prefect import get_run_logger, task
from sqlmodel import col, or_, select, update

from booking.db import configured_engine, insert_once, session_scope
from booking.enums import NO_SHOW_TRIGGERS, TimeUnit, WorkStatus
from booking.models import Workflow, WorkflowActivation, WorkflowReminder, WorkflowStep
from booking.payload import PostCommitPayload
from tasks.delivery import store
from tasks.retry import step_policy
from tasks.scheduling.plan import (
    PlannedReminder,
    StepRule,
    mandatory_reminders,
    offset,
    plan_workflow_reminders,
)


@task(name="load workflows", **step_policy("database"))
def load_rules(payload: PostCommitPayload) -> list[StepRule]:
    """Steps of the active workflows of this event type, its host or its team."""
    owners = [col(Workflow.user_id) == payload.organizer.id]
    if payload.team_id is not None:
        owners.append(col(Workflow.team_id) == payload.team_id)
    activated = select(WorkflowActivation.workflow_id).where(
        WorkflowActivation.event_type_id == payload.event_type.id
    )
    with session_scope(configured_engine()) as session:
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
            )
            for workflow, step in rows
        ]


@task(name="cancel original booking's reminders", **step_policy("database"))
def cancel_original_reminders(payload: PostCommitPayload) -> int:
    """On a reschedule, the replaced booking's pending reminders are not sent."""
    assert payload.reschedule is not None
    with session_scope(configured_engine()) as session:
        result = session.exec(  # type: ignore[call-overload]
            update(WorkflowReminder)
            .where(
                col(WorkflowReminder.booking_id) == payload.reschedule.original_booking_id,
                col(WorkflowReminder.status) == WorkStatus.PENDING,
            )
            .values(status=WorkStatus.CANCELLED, skip_reason="booking rescheduled")
        )
        cancelled = result.rowcount or 0
    get_run_logger().info(
        "cancelled %d reminders of %s", cancelled, payload.reschedule.original_uid
    )
    return cancelled


def _store(payload: PostCommitPayload, planned: list[PlannedReminder], what: str) -> int:
    stored = 0
    with session_scope(configured_engine()) as session:
        for item in planned:
            stored += insert_once(
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
    get_run_logger().info(
        "%s: %d planned, %d new for booking %s", what, len(planned), stored, payload.booking_uid
    )
    return stored


@task(name="schedule mandatory reminder", **step_policy("database"))
def schedule_mandatory_reminder(payload: PostCommitPayload, rules: list[StepRule]) -> int:
    """An attendee email one hour before, unless a workflow or confirmation rules it out."""
    return _store(payload, mandatory_reminders(payload, rules), "mandatory reminder")


@task(name="schedule workflow reminders", **step_policy("database"))
def schedule_workflow_reminders(payload: PostCommitPayload, rules: list[StepRule]) -> int:
    """One row per recipient of every workflow step that applies to this booking."""
    return _store(payload, plan_workflow_reminders(payload, rules), "workflow reminders")


@task(name="schedule no-show checks", **step_policy("database"))
def schedule_no_show_triggers(payload: PostCommitPayload) -> int:
    """A row due at start + offset for each host/guest no-show subscriber of a confirmed booking."""
    if not payload.confirmed_by_default:
        get_run_logger().info("booking not confirmed: no no-show checks")
        return 0
    with session_scope(configured_engine()) as session:
        stored = store.store_triggers(
            session,
            payload,
            NO_SHOW_TRIGGERS,
            lambda sub, _trigger: (
                payload.start + offset(sub.time or 0, sub.time_unit or TimeUnit.MINUTE)
            ),
        )
    get_run_logger().info("stored %d no-show checks for booking %s", stored, payload.booking_uid)
    return stored

"""Workflows (reminder rules), their steps, where they apply, and the reminders they plan."""

from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from booking.enums import ReminderMethod, TimeUnit, WorkflowAction, WorkflowTrigger
from booking.models.types import enum_type
from booking.models.work import DueWork
from booking.templates import check_template


class Workflow(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    trigger: WorkflowTrigger = Field(sa_type=enum_type(WorkflowTrigger))
    time: int | None = None
    time_unit: TimeUnit | None = Field(default=None, sa_type=enum_type(TimeUnit))
    active: bool = True
    active_on_all: bool = False  # every event type of the owner


class WorkflowActivation(SQLModel, table=True):
    """The event types a workflow applies to (unless `active_on_all`)."""

    __table_args__ = (UniqueConstraint("workflow_id", "event_type_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: int = Field(foreign_key="workflow.id", index=True)
    event_type_id: int = Field(foreign_key="eventtype.id", index=True)


class WorkflowStep(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    workflow_id: int = Field(foreign_key="workflow.id", index=True)
    step_number: int = 1
    action: WorkflowAction = Field(sa_type=enum_type(WorkflowAction))
    send_to: str | None = None  # for EMAIL_ADDRESS and SMS_NUMBER
    subject_template: str | None = None
    body_template: str | None = Field(default=None, sa_column=Column(Text))


NOTICE_KEY_PREFIX = "notice:"  # a WorkflowReminder that records a notice sent at once


class WorkflowReminder(DueWork, table=True):
    """One message to one recipient at `due_at`: a workflow step's or the mandatory one, or a
    cancellation's or rejection's notice, stored SENT once sent (`NOTICE_KEY_PREFIX` keys)."""

    __table_args__ = (Index("ix_workflowreminder_status_due", "status", "due_at"),)

    workflow_step_id: int | None = Field(default=None, foreign_key="workflowstep.id")
    is_mandatory: bool = False
    method: ReminderMethod = Field(sa_type=enum_type(ReminderMethod))
    recipient: str
    recipient_name: str | None = None
    locale: str = "en"
    time_zone: str = "UTC"


@event.listens_for(WorkflowStep, "before_insert")
@event.listens_for(WorkflowStep, "before_update")
def _check_templates(_mapper: Any, _connection: Any, step: WorkflowStep) -> None:
    """A template that could never render is refused when it is saved, not when sending."""
    if step.subject_template is not None:
        check_template(step.subject_template, what="reminder subject template")
    if step.body_template is not None:
        check_template(step.body_template, what="reminder body template")

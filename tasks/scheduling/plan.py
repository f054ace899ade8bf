"""Pure planning: which reminders and no-show checks a booking gets, due when, for whom; and
which notices its cancellation or rejection sends at once."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from booking.enums import (
    BookingEvent,
    ReminderMethod,
    TimeUnit,
    WorkflowAction,
    WorkflowTrigger,
)
from booking.payload import PostCommitPayload

MANDATORY_LEAD = timedelta(hours=1)
MANDATORY_COVER = timedelta(hours=12)
UNITS = {TimeUnit.MINUTE: "minutes", TimeUnit.HOUR: "hours", TimeUnit.DAY: "days"}


@dataclass(frozen=True)
class StepRule:
    """A workflow step as planning needs it."""

    step_id: int
    trigger: WorkflowTrigger
    offset: timedelta
    action: WorkflowAction
    send_to: str | None
    subject: str | None = None  # the step's own templates; None: the default text
    body: str | None = None


@dataclass(frozen=True)
class PlannedReminder:
    dedupe_key: str
    step_id: int | None
    method: ReminderMethod
    recipient: str
    recipient_name: str | None
    locale: str
    time_zone: str
    due_at: datetime
    is_mandatory: bool = False


def offset(time: int | None, unit: TimeUnit | None) -> timedelta:
    if not time or unit is None:
        return timedelta(0)
    return timedelta(**{UNITS[unit]: time})


def workflow_due(rule: StepRule, payload: PostCommitPayload) -> datetime | None:
    """When the step fires for this booking, or None if its trigger does not apply.

    A time already past is kept as is: the next sweep sends it at once.
    """
    match rule.trigger:
        case WorkflowTrigger.BEFORE_EVENT:
            return payload.start - rule.offset
        case WorkflowTrigger.AFTER_EVENT:
            return payload.end + rule.offset
        case WorkflowTrigger.NEW_EVENT:
            return None if payload.is_reschedule else payload.created_at + rule.offset
        case WorkflowTrigger.RESCHEDULE_EVENT:
            return payload.created_at + rule.offset if payload.is_reschedule else None
    return None


def plan_workflow_reminders(
    payload: PostCommitPayload, rules: list[StepRule]
) -> list[PlannedReminder]:
    """One reminder per recipient of every applicable step, planned when the booking became
    confirmed; none while unconfirmed, and none for a cancellation or rejection."""
    if not payload.plans_confirmed_work:
        return []
    planned = []
    for rule in rules:
        due = workflow_due(rule, payload)
        if due is None:
            continue
        for method, recipient, name, locale, zone in _recipients(rule, payload):
            planned.append(
                PlannedReminder(
                    dedupe_key=f"{payload.booking_id}:step-{rule.step_id}:{recipient.lower()}",
                    step_id=rule.step_id,
                    method=method,
                    recipient=recipient,
                    recipient_name=name,
                    locale=locale,
                    time_zone=zone,
                    due_at=due,
                )
            )
    return planned


Recipient = tuple[ReminderMethod, str, str | None, str, str]


def _recipients(rule: StepRule, payload: PostCommitPayload) -> Iterator[Recipient]:
    """(method, address, name, locale, time zone) of everyone a step reaches."""
    organizer = payload.organizer
    match rule.action:
        case WorkflowAction.EMAIL_HOST:
            yield (
                ReminderMethod.EMAIL,
                organizer.email,
                organizer.name,
                organizer.locale,
                organizer.time_zone,
            )
        case WorkflowAction.EMAIL_ATTENDEE:
            for a in payload.attendees:
                yield ReminderMethod.EMAIL, a.email, a.name, a.locale, a.time_zone
        case WorkflowAction.EMAIL_ADDRESS if rule.send_to:
            yield (ReminderMethod.EMAIL, rule.send_to, None, organizer.locale, organizer.time_zone)
        case WorkflowAction.SMS_ATTENDEE:
            for a in payload.attendees:
                if a.phone_number:
                    yield ReminderMethod.SMS, a.phone_number, a.name, a.locale, a.time_zone
        case WorkflowAction.SMS_NUMBER if rule.send_to:
            yield (ReminderMethod.SMS, rule.send_to, None, organizer.locale, organizer.time_zone)


def mandatory_reminders(payload: PostCommitPayload, rules: list[StepRule]) -> list[PlannedReminder]:
    """An email to each attendee one hour before start, once the booking is confirmed (not
    while it awaits confirmation), unless a BEFORE_EVENT attendee email within 12 hours
    already covers it."""
    if not payload.plans_confirmed_work:
        return []
    covered = any(
        r.trigger == WorkflowTrigger.BEFORE_EVENT
        and r.action == WorkflowAction.EMAIL_ATTENDEE
        and r.offset <= MANDATORY_COVER
        for r in rules
    )
    if covered:
        return []
    return [
        PlannedReminder(
            dedupe_key=f"{payload.booking_id}:mandatory:{a.email.lower()}",
            step_id=None,
            method=ReminderMethod.EMAIL,
            recipient=a.email,
            recipient_name=a.name,
            locale=a.locale,
            time_zone=a.time_zone,
            due_at=payload.start - MANDATORY_LEAD,
            is_mandatory=True,
        )
        for a in payload.attendees
    ]


@dataclass(frozen=True)
class Notice:
    """A message sent at once when a booking is cancelled or rejected: the default
    cancellation or rejection text (`kind`), or a workflow step's own templates."""

    kind: Literal["cancelled", "rejected"]
    label: str  # who, as the UI may show it: "host", "attendee 2", "workflow step 7"
    method: ReminderMethod
    recipient: str
    name: str | None
    locale: str
    time_zone: str
    subject: str | None = None
    body: str | None = None
    step_id: int | None = None  # the workflow step it comes from, if any


def plan_notices(payload: PostCommitPayload, rules: list[StepRule]) -> list[Notice]:
    """A cancellation tells every attendee and the host, each in their language and zone,
    and runs the EVENT_CANCELLED workflow steps; a rejection tells the attendees."""
    match payload.event:
        case BookingEvent.CANCELLED:
            kind: Literal["cancelled", "rejected"] = "cancelled"
        case BookingEvent.REJECTED:
            kind = "rejected"
        case _:
            return []
    notices = [
        Notice(kind, f"attendee {i}", ReminderMethod.EMAIL, a.email, a.name, a.locale, a.time_zone)
        for i, a in enumerate(payload.attendees, start=1)
    ]
    if kind == "rejected":
        return notices
    host = payload.organizer
    notices.append(
        Notice(
            kind, "host", ReminderMethod.EMAIL, host.email, host.name, host.locale, host.time_zone
        )
    )
    for rule in rules:
        if rule.trigger == WorkflowTrigger.EVENT_CANCELLED:
            notices.extend(
                Notice(
                    kind=kind,
                    label=f"workflow step {rule.step_id} #{n}",  # one key per recipient
                    method=method,
                    recipient=recipient,
                    name=name,
                    locale=locale,
                    time_zone=zone,
                    subject=rule.subject,
                    body=rule.body,
                    step_id=rule.step_id,
                )
                for n, (method, recipient, name, locale, zone) in enumerate(
                    _recipients(rule, payload), start=1
                )
            )
    return notices

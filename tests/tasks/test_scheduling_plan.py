from datetime import UTC, datetime, timedelta

import pytest

from booking.enums import ReminderMethod, WorkflowAction, WorkflowTrigger
from booking.i18n import local_time
from tasks.scheduling.plan import StepRule, mandatory_reminders, plan_workflow_reminders
from tests.factories import snapshot as payload


def rule(trigger, action=WorkflowAction.EMAIL_ATTENDEE, hours=24, send_to=None, step_id=1):
    return StepRule(step_id, trigger, timedelta(hours=hours), action, send_to)


def test_mandatory_reminder_is_an_attendee_email_one_hour_before() -> None:
    (reminder,) = mandatory_reminders(payload(), [])

    assert reminder.is_mandatory and reminder.method == ReminderMethod.EMAIL
    assert reminder.recipient == "a@x.example"
    assert reminder.due_at == datetime(2031, 1, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize("hours", [1, 12])
def test_a_before_event_attendee_email_within_12h_replaces_the_mandatory_one(hours) -> None:
    assert mandatory_reminders(payload(), [rule(WorkflowTrigger.BEFORE_EVENT, hours=hours)]) == []


def test_a_before_event_email_further_out_does_not_replace_it() -> None:
    assert len(mandatory_reminders(payload(), [rule(WorkflowTrigger.BEFORE_EVENT, hours=24)])) == 1


def test_no_mandatory_reminder_when_the_booking_needs_confirmation() -> None:
    assert mandatory_reminders(payload(confirmed=False), []) == []


@pytest.mark.parametrize(
    ("trigger", "reschedule", "due"),
    [
        (WorkflowTrigger.BEFORE_EVENT, False, datetime(2030, 12, 31, 9, tzinfo=UTC)),
        (WorkflowTrigger.AFTER_EVENT, False, datetime(2031, 1, 2, 9, 30, tzinfo=UTC)),
        (WorkflowTrigger.NEW_EVENT, False, datetime(2030, 12, 2, tzinfo=UTC)),
        (WorkflowTrigger.NEW_EVENT, True, None),
        (WorkflowTrigger.RESCHEDULE_EVENT, True, datetime(2030, 12, 2, tzinfo=UTC)),
        (WorkflowTrigger.RESCHEDULE_EVENT, False, None),
    ],
)
def test_each_workflow_trigger_is_due_at_its_time(trigger, reschedule, due) -> None:
    planned = plan_workflow_reminders(payload(reschedule=reschedule), [rule(trigger)])

    assert [p.due_at for p in planned] == ([due] if due else [])


def test_no_workflow_reminders_while_unconfirmed() -> None:
    rules = [rule(WorkflowTrigger.BEFORE_EVENT), rule(WorkflowTrigger.NEW_EVENT, step_id=2)]

    assert plan_workflow_reminders(payload(confirmed=False), rules) == []


def test_actions_choose_their_recipients() -> None:
    rules = [
        rule(WorkflowTrigger.BEFORE_EVENT, WorkflowAction.EMAIL_HOST, step_id=1),
        rule(
            WorkflowTrigger.BEFORE_EVENT,
            WorkflowAction.EMAIL_ADDRESS,
            send_to="ops@x.example",
            step_id=2,
        ),
        rule(
            WorkflowTrigger.BEFORE_EVENT,
            WorkflowAction.SMS_NUMBER,
            send_to="+4915111111111",
            step_id=3,
        ),
        rule(WorkflowTrigger.BEFORE_EVENT, WorkflowAction.SMS_ATTENDEE, step_id=4),  # no phone
    ]

    planned = plan_workflow_reminders(payload(), rules)

    assert [(p.method, p.recipient) for p in planned] == [
        (ReminderMethod.EMAIL, "h@x.example"),
        (ReminderMethod.EMAIL, "ops@x.example"),
        (ReminderMethod.SMS, "+4915111111111"),
    ]


def test_before_event_across_a_dst_change_keeps_the_absolute_offset() -> None:
    # Berlin switches to summer time on 2031-03-30; 24 h before 10:00 CEST is 09:00 CET.
    p = payload().model_copy(update={"start": datetime(2031, 3, 30, 8, tzinfo=UTC)})

    (planned,) = plan_workflow_reminders(p, [rule(WorkflowTrigger.BEFORE_EVENT)])

    assert planned.due_at == datetime(2031, 3, 29, 8, tzinfo=UTC)
    assert local_time(p.start, "Europe/Berlin", "de").startswith("30. März 2031, 10:00:00")
    assert local_time(planned.due_at, "Europe/Berlin", "de").startswith("29. März 2031, 09:00:00")

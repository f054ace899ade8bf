import json

import pytest

from booking.enums import WebhookTrigger
from tasks.delivery.body import booking_data, render_body
from tasks.delivery.message import booking_trigger, message_id
from tasks.templates import TemplateRejected
from tests.factories import snapshot as payload


@pytest.mark.parametrize(
    ("confirmed", "reschedule", "trigger"),
    [
        (False, False, WebhookTrigger.BOOKING_REQUESTED),
        (False, True, WebhookTrigger.BOOKING_REQUESTED),
        (True, True, WebhookTrigger.BOOKING_RESCHEDULED),
        (True, False, WebhookTrigger.BOOKING_CREATED),
    ],
)
def test_trigger_follows_confirmation_then_reschedule(confirmed, reschedule, trigger) -> None:
    assert booking_trigger(payload(confirmed, reschedule)) == trigger


def test_message_id_is_stable_per_event_subscriber_and_trigger() -> None:
    one = message_id("e1", 5, WebhookTrigger.BOOKING_CREATED)

    assert one == message_id("e1", 5, WebhookTrigger.BOOKING_CREATED)
    assert one != message_id("e1", 6, WebhookTrigger.BOOKING_CREATED)
    assert one != message_id("e2", 5, WebhookTrigger.BOOKING_CREATED)


def test_default_body_is_the_envelope() -> None:
    data = booking_data(payload(reschedule=True), WebhookTrigger.BOOKING_RESCHEDULED)

    body, content_type = render_body(
        None, WebhookTrigger.BOOKING_RESCHEDULED, "2030-12-01T00:00:00Z", data
    )

    assert content_type == "application/json"
    decoded = json.loads(body)
    assert set(decoded) == {"triggerEvent", "createdAt", "payload"}
    assert decoded["payload"]["rescheduleUid"] == "old"
    assert decoded["payload"]["startTime"] == "2031-01-01T09:00:00Z"
    assert decoded["payload"]["attendees"][0]["timeZone"] == "Europe/Berlin"


def test_template_renders_over_the_same_data() -> None:
    data = booking_data(payload(), WebhookTrigger.BOOKING_CREATED)
    template = (
        '{"event": "{{ triggerEvent }}", "who": "{{ attendees[0].name }}", "at": "{{ startTime }}"}'
    )

    body, content_type = render_body(template, WebhookTrigger.BOOKING_CREATED, "t", data)

    assert content_type == "application/json"
    assert json.loads(body) == {
        "event": "BOOKING_CREATED",
        "who": "Ada",
        "at": "2031-01-01T09:00:00Z",
    }


def test_plain_text_template_is_sent_as_text() -> None:
    data = booking_data(payload(), WebhookTrigger.BOOKING_CREATED)

    body, content_type = render_body(
        "Booked: {{ title }}", WebhookTrigger.BOOKING_CREATED, "t", data
    )

    assert body == b"Booked: Intro" and content_type.startswith("text/plain")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ payload.update({'x': 1}) }}",
        "{% for x in %}",
    ],
)
def test_hostile_or_broken_templates_are_rejected(template: str) -> None:
    data = booking_data(payload(), WebhookTrigger.BOOKING_CREATED)

    with pytest.raises(TemplateRejected):
        render_body(template, WebhookTrigger.BOOKING_CREATED, "t", data)

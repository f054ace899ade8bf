import json

import pytest

from booking.enums import BookingEvent, BookingStatus, WebhookTrigger
from tasks.delivery.body import booking_data, render_body
from tasks.delivery.message import booking_triggers, message_id
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
    assert booking_triggers(payload(confirmed, reschedule)) == [trigger]


P = WebhookTrigger


@pytest.mark.parametrize(
    ("event", "status", "price", "paid", "triggers"),
    [
        ("CREATED", "PENDING", 4500, False, [P.BOOKING_PAYMENT_INITIATED]),
        ("PAID", "ACCEPTED", 4500, True, [P.BOOKING_PAID, P.BOOKING_CREATED]),
        ("PAID", "PENDING", 4500, True, [P.BOOKING_PAID, P.BOOKING_REQUESTED]),
        ("CONFIRMED", "ACCEPTED", 0, False, [P.BOOKING_CREATED]),
        ("REJECTED", "REJECTED", 0, False, [P.BOOKING_REJECTED]),
        ("CANCELLED", "CANCELLED", 0, False, [P.BOOKING_CANCELLED]),
    ],
)
def test_each_booking_event_tells_subscribers_its_triggers_in_order(
    event, status, price, paid, triggers
) -> None:
    base = payload(confirmed=False)
    changed = base.model_copy(
        update={
            "event": BookingEvent(event),
            "status": BookingStatus(status),
            "paid": paid,
            "event_type": base.event_type.model_copy(update={"price": price}),
        }
    )

    assert booking_triggers(changed) == triggers


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
        '{"event": "{{ triggerEvent }}", "who": "{{ attendees.0.name }}", "at": "{{ startTime }}"}'
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
    ("template", "why"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "unsafe"),
        ("{{ payload.update({'x': 1}) }}", "unsafe"),
        ("{{ attendees.__class__ }}", "unsafe"),
        ("{{#attendees}} unclosed", "malformed"),
        ("{{> /etc/passwd}}", "unsupported"),
        ("{{=<% %>=}}<% title %>", "unsupported"),
        ("{{{ title }}}", "unsupported"),
        ("x" * 20_000, "longer"),
        # Nested sections over the attendees multiply: 3 ** 8 repetitions.
        ("{{#attendees}}" * 8 + "{{name}}" + "{{/attendees}}" * 8, "repeats"),
        # Each repetition prints a long value: bounded output, not a 100 MB body.
        (
            "{{#attendees}}{{#attendees}}{{#attendees}}"
            + "{{responses.notes}}" * 500
            + "{{/attendees}}{{/attendees}}{{/attendees}}",
            "more than",
        ),
    ],
)
def test_hostile_or_broken_templates_are_rejected(template: str, why: str) -> None:
    data = booking_data(payload(), WebhookTrigger.BOOKING_CREATED)
    data["attendees"] = data["attendees"] * 3
    data["responses"] = {"notes": "n" * 1000}

    with pytest.raises(TemplateRejected, match=why):
        render_body(template, WebhookTrigger.BOOKING_CREATED, "t", data)


def test_values_are_not_html_escaped_and_sections_repeat_over_lists() -> None:
    data = booking_data(payload(), WebhookTrigger.BOOKING_CREATED)
    data["title"] = "Tom & Jerry <intro>"

    body, _ = render_body(
        "{{title}}|{{#attendees}}{{name}};{{/attendees}}|{{^missing}}none{{/missing}}",
        WebhookTrigger.BOOKING_CREATED,
        "t",
        data,
    )

    assert body == b"Tom & Jerry <intro>|Ada;|none"


# Every key of the BOOKING_CREATED example payload in Cal.com's webhook documentation.
CAL_COM_PAYLOAD_KEYS = {
    "type", "title", "description", "additionalNotes", "customInputs", "startTime", "endTime",
    "organizer", "responses", "userFieldsResponses", "attendees", "location",
    "destinationCalendar", "hideCalendarNotes", "requiresConfirmation", "eventTypeId",
    "seatsShowAttendees", "seatsPerTimeSlot", "uid", "appsStatus", "eventTitle",
    "eventDescription", "price", "currency", "length", "bookingId", "metadata", "status",
}  # fmt: skip
CAL_COM_ORGANIZER_KEYS = {"id", "name", "email", "username", "timeZone", "language", "timeFormat"}


def test_the_payload_has_every_field_of_cal_coms_except_the_apps_status() -> None:
    data = booking_data(payload(), WebhookTrigger.BOOKING_CREATED)

    assert CAL_COM_PAYLOAD_KEYS - set(data) == {"appsStatus"}  # docs/webhooks.md says why
    assert set(data["organizer"]) == CAL_COM_ORGANIZER_KEYS
    assert data["organizer"]["timeFormat"] == "HH:mm"


def test_responses_are_labelled_as_cal_com_sends_them() -> None:
    snap = payload(reschedule=True).model_copy(
        update={
            "responses": {"notes": "Bring the slides", "company": "Acme"},
            "location": "Room 1",
            "attendees": [
                *payload().attendees,
                payload().attendees[0].model_copy(update={"email": "g@x.example"}),
            ],
            "reschedule": payload(reschedule=True).reschedule.model_copy(
                update={"reason": "clash"}
            ),
        }
    )

    data = booking_data(snap, WebhookTrigger.BOOKING_RESCHEDULED)

    assert data["additionalNotes"] == "Bring the slides"
    assert data["responses"]["name"] == {"label": "your_name", "value": "Ada"}
    assert data["responses"]["notes"] == {"label": "additional_notes", "value": "Bring the slides"}
    assert data["responses"]["guests"] == {"label": "additional_guests", "value": ["g@x.example"]}
    assert data["responses"]["location"]["value"] == {"optionValue": "", "value": "Room 1"}
    assert data["responses"]["rescheduleReason"] == {"label": "reschedule_reason", "value": "clash"}
    assert data["userFieldsResponses"] == {"company": {"label": "company", "value": "Acme"}}
    assert data["responses"]["company"] == data["userFieldsResponses"]["company"]
    assert data["rescheduleId"] == 6 and data["rescheduleEndTime"] == "2030-12-31T01:00:00Z"


def test_an_outbox_event_written_before_schema_2_still_loads() -> None:
    from booking.payload import PostCommitPayload

    old = payload().model_dump(mode="json")
    old["schema_version"] = 1
    del old["team_name"], old["organizer"]["username"]

    assert PostCommitPayload.model_validate(old).organizer.username is None

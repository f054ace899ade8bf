import json
from datetime import UTC, datetime

import pytest

from booking.enums import BookingStatus, WebhookTrigger
from booking.payload import (
    AttendeeSnapshot,
    EventTypeSnapshot,
    HostSnapshot,
    PostCommitPayload,
    RescheduleSnapshot,
)
from tasks.webhooks.body import (
    TemplateRejected,
    booking_data,
    booking_trigger,
    message_id,
    render_body,
)


def payload(confirmed: bool = True, reschedule: bool = False) -> PostCommitPayload:
    host = HostSnapshot(
        id=1, name="Host", email="h@x.example", time_zone="UTC", locale="en", time_format=24
    )
    return PostCommitPayload(
        event_id="e1",
        booking_id=7,
        booking_uid="uid7",
        title="Intro",
        description=None,
        start=datetime(2031, 1, 1, 9, tzinfo=UTC),
        end=datetime(2031, 1, 1, 9, 30, tzinfo=UTC),
        created_at=datetime(2030, 12, 1, tzinfo=UTC),
        status=BookingStatus.ACCEPTED if confirmed else BookingStatus.PENDING,
        location=None,
        metadata={},
        responses={},
        tracking_id=None,
        confirmed_by_default=confirmed,
        team_id=None,
        event_type=EventTypeSnapshot(
            id=3,
            slug="intro",
            title="Intro",
            length_minutes=30,
            price=0,
            currency="usd",
            requires_confirmation=False,
            owner_id=1,
            team_id=None,
        ),
        organizer=host,
        hosts=[host],
        attendees=[
            AttendeeSnapshot(
                name="Ada", email="a@x.example", time_zone="Europe/Berlin", locale="de"
            )
        ],
        reschedule=RescheduleSnapshot(
            original_uid="old",
            original_booking_id=6,
            original_start=datetime(2030, 12, 31, tzinfo=UTC),
            original_end=datetime(2030, 12, 31, 1, tzinfo=UTC),
        )
        if reschedule
        else None,
    )


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

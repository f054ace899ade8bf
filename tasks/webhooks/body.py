"""What a subscriber receives, pure: the trigger, the booking payload, the envelope, templates."""

import json
import uuid
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from booking.enums import WebhookTrigger
from booking.payload import PersonSnapshot, PostCommitPayload
from booking.timeutil import iso_utc

MESSAGE_NAMESPACE = uuid.UUID("5b0c4f3e-7d4a-4a53-9a43-2f3f0e5c9b11")


class TemplateRejected(ValueError):
    """A subscriber's payload template failed to render or tried to escape the sandbox."""


def booking_trigger(payload: PostCommitPayload) -> WebhookTrigger:
    """REQUESTED while awaiting confirmation, else RESCHEDULED or CREATED."""
    if not payload.confirmed_by_default:
        return WebhookTrigger.BOOKING_REQUESTED
    if payload.is_reschedule:
        return WebhookTrigger.BOOKING_RESCHEDULED
    return WebhookTrigger.BOOKING_CREATED


def message_id(source: str, subscription_id: int, trigger: WebhookTrigger) -> str:
    """`webhook-id`: the same for every attempt and re-run of one message, so it dedupes."""
    return f"msg_{uuid.uuid5(MESSAGE_NAMESPACE, f'{source}:{subscription_id}:{trigger}').hex}"


def _person(person: PersonSnapshot) -> dict[str, Any]:
    return {
        "name": person.name,
        "email": person.email,
        "timeZone": person.time_zone,
        "language": {"locale": person.locale},
    }


def booking_data(payload: PostCommitPayload, trigger: WebhookTrigger) -> dict[str, Any]:
    """The booking as integrators read it (camelCase, ISO-8601 UTC times)."""
    return {
        "type": payload.event_type.slug,
        "title": payload.title,
        "description": payload.description,
        "eventTitle": payload.event_type.title,
        "eventTypeId": payload.event_type.id,
        "length": payload.event_type.length_minutes,
        "price": payload.event_type.price,
        "currency": payload.event_type.currency,
        "startTime": iso_utc(payload.start),
        "endTime": iso_utc(payload.end),
        "organizer": {**_person(payload.organizer), "id": payload.organizer.id},
        "team": {"id": payload.team_id, "members": [_person(h) for h in payload.hosts[1:]]}
        if payload.team_id
        else None,
        "attendees": [{**_person(a), "phoneNumber": a.phone_number} for a in payload.attendees],
        "location": payload.location,
        "uid": payload.booking_uid,
        "bookingId": payload.booking_id,
        "rescheduleUid": payload.reschedule.original_uid if payload.reschedule else None,
        "rescheduleStartTime": iso_utc(payload.reschedule.original_start)
        if payload.reschedule
        else None,
        "status": payload.status.value,
        "requiresConfirmation": not payload.confirmed_by_default,
        "metadata": payload.metadata,
        "responses": payload.responses,
        "triggerEvent": trigger.value,
    }


def envelope(trigger: WebhookTrigger, created_at: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"triggerEvent": trigger.value, "createdAt": created_at, "payload": data}


_sandbox = ImmutableSandboxedEnvironment(autoescape=False)


def render_body(
    template: str | None, trigger: WebhookTrigger, created_at: str, data: dict[str, Any]
) -> tuple[bytes, str]:
    """The exact body bytes and their content type: the envelope, or the rendered template.

    Templates see the envelope's keys and every payload field at the top level. They run in
    Jinja2's immutable sandbox: reaching for Python internals raises `TemplateRejected`.
    """
    wrapped = envelope(trigger, created_at, data)
    if template is None:
        return json.dumps(wrapped, separators=(",", ":")).encode(), "application/json"
    try:
        rendered = _sandbox.from_string(template).render({**data, **wrapped})
    except SecurityError as exc:
        raise TemplateRejected(f"payload template tried an unsafe operation: {exc}") from None
    except TemplateError as exc:
        raise TemplateRejected(f"payload template failed to render: {exc}") from None
    try:
        json.loads(rendered)
    except ValueError:
        return rendered.encode(), "text/plain; charset=utf-8"
    return rendered.encode(), "application/json"

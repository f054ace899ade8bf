"""What a subscriber receives, pure: the booking payload, the envelope, or its template."""

import json
from typing import Any

from booking.enums import WebhookTrigger
from booking.payload import PersonSnapshot, PostCommitPayload
from booking.timeutil import iso_utc
from tasks.templates import render_template


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


def render_body(
    template: str | None, trigger: WebhookTrigger, created_at: str, data: dict[str, Any]
) -> tuple[bytes, str]:
    """The exact body bytes and their content type: the envelope, or the rendered template.

    Templates see the envelope's keys and every payload field at the top level; a template
    that fails or reaches for Python internals raises `TemplateRejected`.
    """
    wrapped = envelope(trigger, created_at, data)
    if template is None:
        return json.dumps(wrapped, separators=(",", ":")).encode(), "application/json"
    rendered = render_template(template, {**data, **wrapped}, what="payload template")
    try:
        json.loads(rendered)
    except ValueError:
        return rendered.encode(), "text/plain; charset=utf-8"
    return rendered.encode(), "application/json"

"""What a subscriber receives, pure: the booking payload, the envelope, or its template."""

import json
from collections.abc import Iterable
from typing import Any

from booking.enums import NO_SHOW_TRIGGERS, WebhookTrigger
from booking.payload import HostSnapshot, PersonSnapshot, PostCommitPayload
from booking.timeutil import iso_utc
from tasks.delivery.schemas import payload_json
from tasks.templates import render_template

# Booking-form fields Cal.com's booking form always has, with the labels it sends; every
# other response is the host's own question and also goes to `userFieldsResponses`.
SYSTEM_FIELDS = {
    "name": "your_name",
    "email": "email_address",
    "location": "location",
    "notes": "additional_notes",
    "guests": "additional_guests",
    "rescheduleReason": "reschedule_reason",
    "attendeePhoneNumber": "phone_number",
}


def _person(person: PersonSnapshot) -> dict[str, Any]:
    return {
        "name": person.name,
        "email": person.email,
        "timeZone": person.time_zone,
        "language": {"locale": person.locale},
    }


def _host(host: HostSnapshot) -> dict[str, Any]:
    return {
        **_person(host),
        "id": host.id,
        "username": host.username,
        "timeFormat": "h:mma" if host.time_format == 12 else "HH:mm",
    }


def _responses(payload: PostCommitPayload) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cal.com's labelled `responses` (system fields first) and `userFieldsResponses`."""
    booker, *guests = payload.attendees
    given = dict(payload.responses)
    system = {
        "name": booker.name,
        "email": booker.email,
        "location": {"optionValue": "", "value": payload.location} if payload.location else None,
        "notes": given.pop("notes", None),
        "guests": [guest.email for guest in guests] or None,
        "rescheduleReason": payload.reschedule.reason if payload.reschedule else None,
        "attendeePhoneNumber": booker.phone_number,
    }
    for field in SYSTEM_FIELDS:
        given.pop(field, None)
    labelled = {
        field: {"label": SYSTEM_FIELDS[field]} | ({"value": value} if value is not None else {})
        for field, value in system.items()
    }
    custom = {field: {"label": field, "value": value} for field, value in given.items()}
    return labelled | custom, custom


def booking_data(
    payload: PostCommitPayload, trigger: WebhookTrigger, *, no_show: Iterable[str] = ()
) -> dict[str, Any]:
    """The booking as Cal.com's webhooks send it (docs/webhooks.md compares field by field):
    camelCase, ISO-8601 UTC times, labelled responses; for a no-show trigger, the emails of
    those who did not join. It passes through the trigger's model in `schemas`, the one the
    published JSON Schema is made from."""
    responses, custom = _responses(payload)
    notes = responses["notes"].get("value")
    reschedule = payload.reschedule
    data = {
        "type": payload.event_type.slug,
        "title": payload.title,
        "description": payload.description,
        "additionalNotes": notes if isinstance(notes, str) else "",
        "customInputs": {},
        "startTime": iso_utc(payload.start),
        "endTime": iso_utc(payload.end),
        "organizer": _host(payload.organizer),
        "responses": responses,
        "userFieldsResponses": custom,
        "attendees": [{**_person(a), "phoneNumber": a.phone_number} for a in payload.attendees],
        "location": payload.location,
        "destinationCalendar": None,
        "hideCalendarNotes": False,
        "requiresConfirmation": not payload.confirmed_by_default,
        "eventTypeId": payload.event_type.id,
        "seatsShowAttendees": True,
        "seatsPerTimeSlot": None,
        "uid": payload.booking_uid,
        "eventTitle": payload.event_type.title,
        "eventDescription": None,
        "price": payload.event_type.price,
        "currency": payload.event_type.currency,
        "length": payload.event_type.length_minutes,
        "bookingId": payload.booking_id,
        "metadata": payload.metadata,
        "status": payload.status.value,
        "team": {
            "id": payload.team_id,
            "name": payload.team_name,
            "members": [_person(h) for h in payload.hosts[1:]],
        }
        if payload.team_id
        else None,
        "rescheduleId": reschedule.original_booking_id if reschedule else None,
        "rescheduleUid": reschedule.original_uid if reschedule else None,
        "rescheduleStartTime": iso_utc(reschedule.original_start) if reschedule else None,
        "rescheduleEndTime": iso_utc(reschedule.original_end) if reschedule else None,
        "cancellationReason": payload.cancellation_reason,
        "rejectionReason": payload.rejection_reason,
        "triggerEvent": trigger.value,
    }
    if trigger == WebhookTrigger.BOOKING_CANCELLED:
        data["cancelledBy"] = payload.cancelled_by
    if trigger == WebhookTrigger.BOOKING_PAID and payload.payment is not None:
        data["paid"] = True
        data["paymentId"] = payload.payment.id
    if trigger in NO_SHOW_TRIGGERS:
        data["noShow"] = [{"email": email} for email in sorted(no_show)]
    return payload_json(trigger, data)


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

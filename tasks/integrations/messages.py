"""Pure decisions of the integrations concern, unit-tested without a server."""

from typing import Any

from booking.enums import BookingEvent, BookingStatus
from booking.i18n import local_time, translate
from booking.payload import PostCommitPayload
from booking.timeutil import iso_utc


def push_title_key(payload: PostCommitPayload) -> str | None:
    """What the host's push says of this event, or None when the host needs no push (a
    rejection is the host's own doing).

    Created: booking_requested while unconfirmed, booking_rescheduled on a reschedule, else
    booking_created. Confirmed (or paid and so confirmed): booking_confirmed. Cancelled:
    booking_cancelled.
    """
    match payload.event:
        case BookingEvent.CREATED if not payload.confirmed:
            return "booking_requested"
        case BookingEvent.CREATED:
            return "booking_rescheduled" if payload.is_reschedule else "booking_created"
        case BookingEvent.CONFIRMED | BookingEvent.PAID:
            return "booking_confirmed" if payload.confirmed else "booking_requested"
        case BookingEvent.CANCELLED:
            return "booking_cancelled"
    return None


def push_message(payload: PostCommitPayload, device_token: str) -> dict[str, Any]:
    """An FCM HTTP v1 `messages:send` body for one device of the organizer, in the
    organizer's language, with the time in the organizer's zone."""
    title = push_title_key(payload)
    assert title is not None
    return {
        "message": {
            "token": device_token,
            "notification": {
                "title": translate(payload.organizer.locale, title),
                "body": push_body(payload),
            },
            "data": {
                "bookingId": str(payload.booking_id),
                "bookingUid": payload.booking_uid,
                "status": push_status(payload),
            },
        }
    }


def push_status(payload: PostCommitPayload) -> str:
    if payload.status == BookingStatus.CANCELLED:
        return "CANCELLED"
    return "UPCOMING" if payload.confirmed else "UNCONFIRMED"


def push_body(payload: PostCommitPayload) -> str:
    host = payload.organizer
    key = "push_body_cancelled" if payload.event == BookingEvent.CANCELLED else "push_body"
    return translate(host.locale, key).format(
        booker=payload.attendees[0].name,
        event=payload.event_type.title,
        when=local_time(payload.start, host.time_zone, host.locale),
    )


def chat_booking(payload: PostCommitPayload, account_ids: list[str]) -> dict[str, Any]:
    booker = payload.attendees[0]
    return {
        "accountIds": account_ids,
        "hostName": payload.organizer.name,
        "location": payload.location,
        "eventType": payload.event_type.title,
        "startTime": iso_utc(payload.start),
        "endTime": iso_utc(payload.end),
        "bookerEmail": booker.email,
        "bookerPhone": booker.phone_number,
        "uid": payload.booking_uid,
        "originalUid": payload.reschedule.original_uid if payload.reschedule else None,
    }


def analytics_event(payload: PostCommitPayload) -> dict[str, Any]:
    if payload.event == BookingEvent.CANCELLED:
        name = "booking_cancelled"
    else:
        name = "booking_lead" if payload.event_type.price == 0 else "booking_conversion"
    return {
        "event": name,
        "trackingId": payload.tracking_id,
        "bookingUid": payload.booking_uid,
        "eventTypeId": payload.event_type.id,
        "value": payload.event_type.price,
        "currency": payload.event_type.currency,
        "occurredAt": iso_utc(payload.created_at),
    }


def chat_sync_method(payload: PostCommitPayload) -> str | None:
    """How the booking reaches the hosts' chat: POST when it became confirmed, PATCH when a
    confirmed reschedule replaced one, DELETE when it is cancelled; None otherwise."""
    if payload.event == BookingEvent.CANCELLED:
        return "DELETE"
    if not payload.plans_confirmed_work:
        return None
    return "PATCH" if payload.is_reschedule and payload.event == BookingEvent.CREATED else "POST"


def gated_on_confirmation(payload: PostCommitPayload) -> str | None:
    """Why a step the seed runs only for confirmed bookings is left out, or None to run it."""
    if payload.plans_confirmed_work:
        return None
    return f"booking {payload.event.value.lower()}, {payload.status.value}: not a confirmation"

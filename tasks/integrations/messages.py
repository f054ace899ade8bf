"""Pure decisions of the integrations concern, unit-tested without a server."""

from typing import Any

from booking.enums import BookingStatus
from booking.i18n import local_time, translate
from booking.payload import PostCommitPayload
from booking.timeutil import iso_utc


def push_title_key(payload: PostCommitPayload) -> str:
    """booking_requested while unconfirmed, booking_rescheduled on a reschedule, else created."""
    if not payload.confirmed_by_default:
        return "booking_requested"
    return "booking_rescheduled" if payload.is_reschedule else "booking_created"


def push_message(payload: PostCommitPayload, device_token: str) -> dict[str, Any]:
    """An FCM HTTP v1 `messages:send` body for one device of the organizer, in the
    organizer's language, with the time in the organizer's zone."""
    return {
        "message": {
            "token": device_token,
            "notification": {
                "title": translate(payload.organizer.locale, push_title_key(payload)),
                "body": push_body(payload),
            },
            "data": {
                "bookingId": str(payload.booking_id),
                "bookingUid": payload.booking_uid,
                "status": "UPCOMING" if payload.confirmed_by_default else "UNCONFIRMED",
            },
        }
    }


def push_body(payload: PostCommitPayload) -> str:
    host = payload.organizer
    return translate(host.locale, "push_body").format(
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
    return {
        "event": "booking_lead" if payload.event_type.price == 0 else "booking_conversion",
        "trackingId": payload.tracking_id,
        "bookingUid": payload.booking_uid,
        "eventTypeId": payload.event_type.id,
        "value": payload.event_type.price,
        "currency": payload.event_type.currency,
        "occurredAt": iso_utc(payload.created_at),
    }


def is_chat_syncable(payload: PostCommitPayload) -> bool:
    return payload.status == BookingStatus.ACCEPTED

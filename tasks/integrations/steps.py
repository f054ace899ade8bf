"""The steps of the integrations flow, one Prefect task each (push: one per device), and
which of them a booking needs."""

from collections import Counter
from dataclasses import dataclass

import httpx
from prefect import Task, get_run_logger, task
from sqlmodel import col, func, select

from booking.db import transaction
from booking.enums import BookingEvent
from booking.models import Booking, BookingHost, ChatAccount, PushDevice
from booking.payload import PostCommitPayload
from booking.settings import get_settings
from tasks.caps import provider_slot
from tasks.clients import bearer, http_client, raise_for_provider
from tasks.integrations import contacts
from tasks.integrations.messages import (
    analytics_event,
    chat_booking,
    chat_sync_method,
    gated_on_confirmation,
    push_message,
    push_title_key,
)
from tasks.retry import step_policy

UNREGISTERED = {"UNREGISTERED", "INVALID_ARGUMENT", "NOT_FOUND"}


@dataclass(frozen=True)
class Device:
    id: int
    token: str


def host_devices(payload: PostCommitPayload) -> list[Device]:
    """The organizer's registered devices, when push is configured (a read, not a step)."""
    if not get_settings().push_base_url:
        get_run_logger().info("push not configured: no notification sent")
        return []
    if push_title_key(payload) is None:
        get_run_logger().info("no push to the host for a %s booking", payload.event.value.lower())
        return []
    with transaction() as session:
        rows = session.exec(
            select(PushDevice).where(PushDevice.user_id == payload.organizer.id)
        ).all()
        devices = [Device(row.id, row.token) for row in rows]  # type: ignore[arg-type]
    if not devices:
        get_run_logger().info("host %s has no push devices", payload.organizer.id)
    return devices


@task(
    name="send push to host device",
    task_run_name="send push to host device {device.id}",
    **step_policy("provider"),
)
def send_push(device: Device, payload: PostCommitPayload) -> str:
    """One FCM-style message to one device; an invalid token is unregistered."""
    settings = get_settings()
    url = f"{settings.push_base_url}/v1/projects/{settings.push_project_id}/messages:send"
    with provider_slot("push"):
        response = http_client().post(
            url, json=push_message(payload, device.token), headers=bearer(settings.push_token)
        )
    if response.status_code in (400, 404) and _fcm_status(response) in UNREGISTERED:
        with transaction() as session:
            row = session.get(PushDevice, device.id)
            if row is not None:
                session.delete(row)
        get_run_logger().info("device %s token is no longer valid: unregistered", device.id)
        return "unregistered"
    raise_for_provider(response, "push provider")
    return "sent"


def _fcm_status(response: httpx.Response) -> str | None:
    try:
        return response.json().get("error", {}).get("status")
    except ValueError:
        return None


@task(name="sync booking to chat", **step_policy("provider"))
def sync_chat(payload: PostCommitPayload) -> str:
    """POST a booking that became confirmed (PATCH a reschedule, DELETE a cancellation) for
    hosts with chat accounts; a cancelled booking the chat never had is already gone."""
    settings = get_settings()
    method = chat_sync_method(payload)
    assert method is not None
    with transaction() as session:
        accounts = list(
            session.exec(
                select(ChatAccount.account_id).where(ChatAccount.user_id == payload.organizer.id)
            )
        )
    if not accounts:
        return _skip("host has no connected chat accounts")
    headers = {**bearer(settings.chat_api_key), "Idempotency-Key": f"{payload.event_id}:chat"}
    with provider_slot("chat"):
        if method == "DELETE":
            response = http_client().delete(
                f"{settings.chat_base_url}/cal_booking/{payload.booking_uid}", headers=headers
            )
        else:
            response = http_client().request(
                method,
                f"{settings.chat_base_url}/cal_booking",
                json=chat_booking(payload, accounts),
                headers=headers,
            )
    if method == "DELETE" and response.status_code == 404:
        return _skip("chat has no such booking: nothing to remove")
    raise_for_provider(response, "chat")
    return {"POST": "posted", "PATCH": "patched", "DELETE": "deleted"}[method]


@task(name="identify hosts in Customer.io", **step_policy("provider"))
def identify_hosts(payload: PostCommitPayload) -> str:
    """PUT every booked host to the Track API (idempotent, so a retry is harmless)."""
    settings = get_settings()
    api_key = settings.customerio_api_key.get_secret_value() if settings.customerio_api_key else ""
    host_ids = [h.id for h in payload.hosts]
    with transaction() as session:
        # Bookings each host organized, plus those they joined as a co-host.
        counts: Counter[int] = Counter(
            dict(
                session.exec(
                    select(Booking.user_id, func.count())
                    .where(col(Booking.user_id).in_(host_ids))
                    .group_by(Booking.user_id)
                ).all()
            )
        )
        counts.update(
            dict(
                session.exec(
                    select(BookingHost.user_id, func.count())
                    .where(col(BookingHost.user_id).in_(host_ids))
                    .group_by(BookingHost.user_id)
                ).all()
            )
        )
    for host in payload.hosts:
        with provider_slot("customerio"):
            response = http_client().put(
                f"{settings.customerio_track_url}/api/v1/customers/{host.id}",
                auth=(settings.customerio_site_id, api_key),
                json={
                    "email": host.email,
                    "name": host.name,
                    "last_booking_at": int(payload.created_at.timestamp()),
                    "last_booking_uid": payload.booking_uid,
                    "bookings_count": counts.get(host.id, 0),
                },
            )
        raise_for_provider(response, "Customer.io")
    return f"identified {len(payload.hosts)} hosts"


@task(name="sync booker to host contacts", **step_policy("database"))
def sync_contacts(payload: PostCommitPayload) -> str:
    """Upsert the booker and the other attendees into the organizer's contacts."""
    with transaction() as session:
        changed = contacts.upsert_attendees(session, payload)
    return f"upserted {changed} contacts"


@task(name="send analytics event", **step_policy("provider"))
def send_analytics(payload: PostCommitPayload) -> str:
    """One lead/conversion event per booking; the idempotency key makes retries count once."""
    settings = get_settings()
    assert settings.analytics_url
    with provider_slot("analytics"):
        response = http_client().post(
            settings.analytics_url,
            json=analytics_event(payload),
            headers={
                **bearer(settings.analytics_api_key),
                "Idempotency-Key": f"{payload.booking_uid}:analytics"
                + (":cancelled" if payload.event == BookingEvent.CANCELLED else ""),
            },
        )
    raise_for_provider(response, "analytics")
    return "sent"


def _skip(reason: str) -> str:
    get_run_logger().info("%s", reason)
    return f"skipped: {reason}"


def steps_for(payload: PostCommitPayload) -> list[Task[[PostCommitPayload], str]]:
    """The steps after push that this booking needs, in order; each one left out is logged
    with the reason (provider not configured, booking not eligible), so nothing is silent."""
    settings = get_settings()
    confirmation = gated_on_confirmation(payload)
    cancelled = payload.event == BookingEvent.CANCELLED
    reasons: dict[Task[[PostCommitPayload], str], str | None] = {
        sync_chat: "chat sync not configured"
        if not settings.chat_base_url
        else None
        if chat_sync_method(payload)
        else f"booking {payload.event.value.lower()}, {payload.status.value}: no chat sync",
        identify_hosts: "Customer.io not configured"
        if not (settings.customerio_track_url and settings.customerio_site_id)
        else confirmation,
        sync_contacts: confirmation,
        send_analytics: "analytics not configured"
        if not settings.analytics_url
        else "booking carries no tracking id"
        if not payload.tracking_id
        else None
        if cancelled
        else confirmation,
    }
    for step, reason in reasons.items():
        if reason:
            get_run_logger().info("%s skipped: %s", step.name, reason)
    return [step for step, reason in reasons.items() if reason is None]

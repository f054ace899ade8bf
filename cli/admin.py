"""What the operators' command line does, as functions on a session (the `booking` command
in cli/main.py prints their results; the main job seeds its demo with them).

Bad input raises `AdminError` with one clear message and writes nothing. Secrets are
returned to the caller, never logged.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from booking import outbox
from booking.enums import WebhookTrigger
from booking.models import (
    Booking,
    EventType,
    OutboxEvent,
    PushDevice,
    Team,
    User,
    WebhookDelivery,
    WebhookSubscription,
)
from booking.models.webhooks import MAX_SIGNING_KEYS, valid_previous
from booking.settings import get_settings
from booking.templates import InvalidTemplate
from booking.timeutil import check_time_zone, utcnow
from tasks.delivery.guard import RefusedURL, check_url
from tasks.delivery.signing import InvalidSecret, new_secret, signing_key

Row = TypeVar("Row")


class AdminError(ValueError):
    """An operator's request that cannot be done as asked; the message says why."""


def _commit(session: Session, what: str) -> None:
    """Commit; a duplicate, or a template the models refuse on save, is an AdminError."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AdminError(f"{what} already exists") from None
    except InvalidTemplate as exc:
        session.rollback()
        raise AdminError(str(exc)) from None


def _existing(session: Session, model: type[Row], row_id: int, what: str) -> Row:
    row = session.get(model, row_id)
    if row is None:
        raise AdminError(f"no {what} with id {row_id}")
    return row


# -- what a booking product owns; here only as far as a first-time user needs it -------------


def add_user(
    session: Session,
    *,
    name: str,
    email: str,
    username: str | None = None,
    time_zone: str = "UTC",
    locale: str = "en",
    time_format: int = 24,
) -> User:
    try:
        email = TypeAdapter(EmailStr).validate_python(email)
        check_time_zone(time_zone)
    except (ValidationError, ValueError):
        raise AdminError(
            "a valid email and an IANA time zone (e.g. Europe/Berlin) are needed"
        ) from None
    if time_format not in (12, 24):
        raise AdminError("time format is 12 or 24")
    user = User(
        name=name,
        email=email,
        username=username,
        time_zone=time_zone,
        locale=locale,
        time_format=time_format,
    )
    session.add(user)
    _commit(session, "a user with this email or username")
    return user


def add_event_type(
    session: Session,
    *,
    owner_id: int,
    slug: str,
    title: str,
    length_minutes: int = 30,
    requires_confirmation: bool = False,
    location: str | None = None,
) -> EventType:
    _existing(session, User, owner_id, "user")
    if not 1 <= length_minutes <= 24 * 60:
        raise AdminError("length is 1 to 1440 minutes")
    event_type = EventType(
        owner_id=owner_id,
        slug=slug,
        title=title,
        length_minutes=length_minutes,
        requires_confirmation=requires_confirmation,
        location=location,
    )
    session.add(event_type)
    _commit(session, "this event type")
    return event_type


def add_device(session: Session, *, user_id: int, token: str, platform: str = "android"):
    _existing(session, User, user_id, "user")
    device = PushDevice(user_id=user_id, token=token, platform=platform)
    session.add(device)
    _commit(session, "a device with this token")
    return device


# -- webhook subscriptions ------------------------------------------------------------------


def parse_triggers(given: Sequence[str]) -> list[WebhookTrigger]:
    """Trigger names, each given alone or comma-separated, any case."""
    names = [name.strip() for item in given for name in item.split(",") if name.strip()]
    known = {trigger.value for trigger in WebhookTrigger}
    unknown = [name for name in names if name.upper() not in known]
    if unknown or not names:
        raise AdminError(f"triggers are one or more of: {', '.join(sorted(known))}")
    return [WebhookTrigger(name.upper()) for name in dict.fromkeys(names)]


def add_subscription(
    session: Session,
    *,
    url: str,
    triggers: Sequence[str],
    user_id: int | None = None,
    event_type_id: int | None = None,
    team_id: int | None = None,
    template: str | None = None,
    secret: str | None = None,
    rate: float | None = None,
) -> tuple[WebhookSubscription, str, str | None]:
    """A new active subscription at exactly one scope; returns it with its secret (a new
    `whsec_` one unless given), which is shown once, and a warning about its URL or None.
    The URL passes the delivery's guard first, with the same allow-list
    (`check_subscriber_url`)."""
    warning = check_subscriber_url(url)
    scopes = {"user": user_id, "event type": event_type_id, "team": team_id}
    chosen = {name: value for name, value in scopes.items() if value is not None}
    if len(chosen) != 1:
        raise AdminError("give exactly one scope: a user, an event type or a team")
    ((scope, scope_id),) = chosen.items()
    _existing(
        session, {"user": User, "event type": EventType, "team": Team}[scope], scope_id, scope
    )
    secret = secret or new_secret()
    try:
        signing_key(secret)
    except InvalidSecret as exc:
        raise AdminError(str(exc)) from None
    subscription = WebhookSubscription(
        subscriber_url=url,
        triggers=parse_triggers(triggers),
        user_id=user_id,
        event_type_id=event_type_id,
        team_id=team_id,
        payload_template=template,
        secret=secret,
        rate_per_second=_check_rate(rate),
    )
    session.add(subscription)
    _commit(session, "this subscription")
    return subscription, secret, warning


MAX_RATE = 1000.0


def _check_rate(rate: float | None) -> float | None:
    if rate is not None and not 0 < rate <= MAX_RATE:
        raise AdminError(f"a rate is messages per second, above 0 and at most {MAX_RATE:g}")
    return rate


def update_subscription(
    session: Session, subscription_id: int, *, rate: float | None
) -> WebhookSubscription:
    """Set (or, with 0, remove) a subscription's rate; deliveries follow it from the next."""
    subscription = _subscription(session, subscription_id)
    subscription.rate_per_second = None if rate == 0 else _check_rate(rate)
    session.add(subscription)
    session.commit()
    return subscription


def check_subscriber_url(url: str) -> str | None:
    """The delivery's URL guard, run at save: a URL it would refuse (not http(s), or a host
    resolving to an internal address outside `webhook_allowed_networks`) is an AdminError.
    A host that does not resolve now may later: returns a warning saying so, else None."""
    try:
        check_url(url, get_settings().webhook_allowed_networks)
    except RefusedURL as exc:
        raise AdminError(str(exc)) from None
    except httpx.ConnectError as exc:
        return f"{exc}; deliveries will be tried when it does"
    return None


def subscriptions(session: Session) -> list[WebhookSubscription]:
    return list(session.exec(select(WebhookSubscription).order_by(col(WebhookSubscription.id))))


def _subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    return _existing(session, WebhookSubscription, subscription_id, "subscription")


def set_active(session: Session, subscription_id: int, active: bool) -> WebhookSubscription:
    subscription = _subscription(session, subscription_id)
    subscription.active = active
    subscription.deactivated_reason = None if active else "disabled by an operator"
    session.add(subscription)
    session.commit()
    return subscription


MAX_OVERLAP = timedelta(days=30)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`24h`, `90m`, `7d`, `30s` or `0` as a timedelta; anything else is an AdminError."""
    number, unit = (text, "s") if text == "0" else (text[:-1], text[-1:].lower())
    if not (number.isascii() and number.isdigit()) or unit not in _UNITS or len(number) > 9:
        raise AdminError(f"{text!r} is not a duration such as 24h, 90m, 7d or 0")
    return timedelta(seconds=int(number) * _UNITS[unit])


def parse_since(text: str, now: datetime) -> datetime:
    """A time (ISO 8601, UTC unless it says otherwise) or a duration back from `now`
    (`1h`, `30m`, `7d`)."""
    try:
        return now - parse_duration(text)
    except AdminError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AdminError(
            f"{text!r} is neither a time (ISO 8601) nor a duration such as 1h"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rotate_secret(
    session: Session, subscription_id: int, expire_previous_after: timedelta = timedelta(hours=24)
) -> str:
    """A new `whsec_` secret for the subscription, in force from its next delivery. Until
    `expire_previous_after` has passed, messages are signed with the previous secret too (so a
    subscriber can deploy the new one); at most MAX_SIGNING_KEYS keys sign at once, the
    oldest dropped first. An overlap of 0 (a leaked secret) drops every earlier key: only
    the new secret signs. Returns the new secret."""
    if not timedelta(0) <= expire_previous_after <= MAX_OVERLAP:
        raise AdminError(f"the overlap must be between 0 and {MAX_OVERLAP.days} days")
    subscription = _subscription(session, subscription_id)
    now = utcnow()
    kept: list[dict[str, str]] = []
    if expire_previous_after > timedelta(0):
        kept = valid_previous(subscription, now)
        if subscription.secret:
            expires = (now + expire_previous_after).isoformat()
            kept.insert(0, {"secret": subscription.secret, "expires_at": expires})
    subscription.previous_secrets = kept[: MAX_SIGNING_KEYS - 1]
    subscription.secret = new_secret()
    session.add(subscription)
    session.commit()
    return subscription.secret


def signing_keys(subscription: WebhookSubscription) -> tuple[int, datetime | None]:
    """How many keys sign its messages now, and when the oldest previous one expires."""
    previous = [
        datetime.fromisoformat(kept["expires_at"])
        for kept in valid_previous(subscription, utcnow())
    ]
    return (1 if subscription.secret else 0) + len(previous), min(previous, default=None)


# -- the delivery log -----------------------------------------------------------------------


@dataclass(frozen=True)
class MessageLog:
    """One webhook message (one `webhook-id`) and its attempts."""

    webhook_id: str
    subscription_id: int
    booking_uid: str
    trigger: str
    attempts: int
    last_status: int | None
    last_error: str | None
    first_at: datetime
    last_at: datetime

    @property
    def delivered(self) -> bool:
        return self.last_status is not None and 200 <= self.last_status < 300


def deliveries(
    session: Session,
    *,
    booking_uid: str | None = None,
    subscription_id: int | None = None,
    failed: bool = False,
    since: datetime | None = None,
    limit: int = 200,
) -> list[MessageLog]:
    """One entry per message, newest first; `failed`: those whose last attempt failed."""
    query = select(WebhookDelivery).order_by(col(WebhookDelivery.id))
    if booking_uid:
        query = query.where(WebhookDelivery.booking_uid == booking_uid)
    if subscription_id is not None:
        query = query.where(WebhookDelivery.subscription_id == subscription_id)
    if since is not None:
        query = query.where(col(WebhookDelivery.created_at) >= since)
    by_message: dict[str, list[WebhookDelivery]] = {}
    for attempt in session.exec(query):
        by_message.setdefault(attempt.message_id, []).append(attempt)
    logs = []
    for webhook_id, attempts in by_message.items():
        first, last = attempts[0], attempts[-1]
        logs.append(
            MessageLog(
                webhook_id=webhook_id,
                subscription_id=last.subscription_id,
                booking_uid=last.booking_uid,
                trigger=last.trigger_event.value,
                attempts=len(attempts),
                last_status=last.status_code,
                last_error=last.error,
                first_at=first.created_at,
                last_at=last.created_at,
            )
        )
    if failed:
        logs = [log for log in logs if not log.delivered]
    return sorted(logs, key=lambda log: log.last_at, reverse=True)[:limit]


# -- the outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxStatus:
    pending: int  # committed, runs not yet created
    running: int  # runs created, not yet seen final
    not_completed: int  # runs final, but not all Completed
    oldest_pending: datetime | None


def outbox_status(session: Session) -> OutboxStatus:
    def count(*conditions) -> int:
        return session.exec(select(func.count()).select_from(OutboxEvent).where(*conditions)).one()

    return OutboxStatus(
        pending=count(col(OutboxEvent.dispatched_at).is_(None)),
        running=count(
            col(OutboxEvent.dispatched_at).is_not(None), col(OutboxEvent.finished_at).is_(None)
        ),
        not_completed=count(outbox.not_done()),
        oldest_pending=session.exec(
            select(func.min(OutboxEvent.created_at)).where(col(OutboxEvent.dispatched_at).is_(None))
        ).one(),
    )


def outbox_events(session: Session, *, pending_only: bool, limit: int = 100) -> list[OutboxEvent]:
    """Undispatched events (`pending_only`), or every event whose work is not known done."""
    if not pending_only:
        return outbox.unfinished(session, limit=limit)
    return list(
        session.exec(
            select(OutboxEvent)
            .where(col(OutboxEvent.dispatched_at).is_(None))
            .order_by(col(OutboxEvent.created_at))
            .limit(limit)
        )
    )


# -- a booking's life -------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingHistory:
    """A booking as support sees it: no attendee's name, email or answers."""

    booking: Booking
    events: list[OutboxEvent]  # in commit order
    deliveries: list[MessageLog]  # oldest first


def booking_history(session: Session, uid: str) -> BookingHistory:
    booking = session.exec(select(Booking).where(Booking.uid == uid)).first()
    if booking is None:
        raise AdminError(f"no booking with uid {uid}")
    events = session.exec(
        select(OutboxEvent)
        .where(OutboxEvent.booking_uid == uid)
        .order_by(col(OutboxEvent.created_at), col(OutboxEvent.id))
    ).all()
    messages = deliveries(session, booking_uid=uid, limit=1000)
    return BookingHistory(booking, list(events), sorted(messages, key=lambda m: m.first_at))

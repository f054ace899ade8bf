"""Factories for test data: each call makes unique rows, committed, and returns them."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import Session, select

from booking.models import (
    Attendee,
    Booking,
    EventType,
    EventTypeHost,
    Membership,
    OutboxEvent,
    Team,
    User,
)

if TYPE_CHECKING:
    from booking.payload import PostCommitPayload


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_user(session: Session, **overrides: Any) -> User:
    name = unique("host")
    user = User(
        name=overrides.pop("name", name.title()),
        email=overrides.pop("email", f"{name}@hosts.example"),
        **overrides,
    )
    session.add(user)
    session.commit()
    return user


def make_event_type(session: Session, owner: User | None = None, **overrides: Any) -> EventType:
    owner = owner if owner is not None or "team_id" in overrides else make_user(session)
    event_type = EventType(
        slug=overrides.pop("slug", unique("call")),
        title=overrides.pop("title", "Intro call"),
        owner_id=owner.id if owner else None,
        **overrides,
    )
    session.add(event_type)
    session.commit()
    return event_type


def make_team_event_type(session: Session, hosts: list[User], **overrides: Any) -> EventType:
    team = Team(name="Sales", slug=unique("team"))
    session.add(team)
    session.commit()
    for host in hosts:
        session.add(Membership(team_id=team.id, user_id=host.id))
    event_type = make_event_type(session, None, team_id=team.id, **overrides)
    for host in hosts:
        session.add(EventTypeHost(event_type_id=event_type.id, user_id=host.id))
    session.commit()
    return event_type


def booking_request(event_type: EventType, **overrides: Any) -> dict[str, Any]:
    """A valid request body for `create_booking`, as a web app would send it."""
    start = overrides.pop("start", datetime(2031, 3, 14, 15, 0, tzinfo=UTC))
    request: dict[str, Any] = {
        "event_type_id": event_type.id,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "booker": {
            "name": "Ada Booker",
            "email": f"{unique('ada')}@bookers.example",
            "time_zone": "Europe/Berlin",
            "locale": "de",
        },
        "responses": {"notes": "See you then"},
    }
    request.update(overrides)
    return request


def make_subscription(session: Session, url: str, triggers: list[str], **scope: Any):
    from booking.models import WebhookSubscription

    subscription = WebhookSubscription(subscriber_url=url, triggers=triggers, **scope)
    session.add(subscription)
    session.commit()
    return subscription


def make_workflow(
    session: Session, event_type: EventType, trigger: str, action: str, hours: int = 0, **step: Any
):
    from booking.enums import TimeUnit
    from booking.models import Workflow, WorkflowActivation, WorkflowStep

    workflow = Workflow(
        name=unique("wf"),
        user_id=event_type.owner_id,
        trigger=trigger,
        time=hours,
        time_unit=TimeUnit.HOUR,
    )
    session.add(workflow)
    session.commit()
    session.add(WorkflowActivation(workflow_id=workflow.id, event_type_id=event_type.id))
    session.add(WorkflowStep(workflow_id=workflow.id, action=action, **step))
    session.commit()
    return workflow


def snapshot(confirmed: bool = True, reschedule: bool = False) -> "PostCommitPayload":
    """A post-commit payload built by hand, for the pure code that reads one."""
    from booking.enums import BookingStatus
    from booking.payload import (
        AttendeeSnapshot,
        EventTypeSnapshot,
        HostSnapshot,
        PostCommitPayload,
        RescheduleSnapshot,
    )

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


class RecordingHandoff:
    """Stands in for the dispatcher where only the hand-off call matters."""

    dispatch_mode = "bundled"

    def __init__(self, fail: bool = False):
        self.submitted: list[str] = []
        self.fail = fail

    def submit(self, event_id: str, *, booking_uid: str, event: str = "CREATED") -> None:
        if self.fail:
            raise ConnectionError("dispatcher unavailable")
        self.submitted.append(event_id)


def row_counts(session: Session) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        session.exec(select(func.count()).select_from(model)).one()
        for model in (Booking, Attendee, OutboxEvent)
    )

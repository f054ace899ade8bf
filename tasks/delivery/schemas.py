"""The webhook bodies as pydantic models, one per trigger, and their published JSON Schemas.

`booking_data` passes every payload it builds through its trigger's model, so a body can
only carry what the published schema says. `python -m tasks.delivery.schemas` writes the
schemas to `docs/schemas/`; `--check` exits 1 when the checked-in files differ.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, create_model
from typing_extensions import TypedDict  # pydantic needs its TypedDict before Python 3.12

from booking.enums import NO_SHOW_TRIGGERS, BookingStatus, CancelledBy, WebhookTrigger

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

UtcTime = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$",
        description="ISO 8601 in UTC, with a Z suffix",
        examples=["2026-12-07T15:30:00Z"],
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", field_title_generator=lambda name, _: name)


class Language(_Body):
    locale: str


class Person(_Body):
    name: str
    email: str
    timeZone: str = Field(description="IANA time zone")  # noqa: N815 (Cal.com's keys)
    language: Language


class Organizer(Person):
    id: int
    username: str | None
    timeFormat: Literal["h:mma", "HH:mm"]  # noqa: N815


class Attendee(Person):
    phoneNumber: str | None = Field(description="E.164")  # noqa: N815


class Team(_Body):
    id: int
    name: str | None
    members: list[Person] = Field(description="the co-hosts")


class Labelled(TypedDict):
    """A booking-form answer; a system field with no answer has only its label."""

    label: str
    value: NotRequired[Any]


class Absent(_Body):
    email: str


class BookingPayload(_Body):
    """The booking, the `payload` of every trigger; docs/webhooks.md compares it with
    Cal.com's field by field."""

    type: str = Field(description="the event type's slug")
    title: str
    description: str | None
    additionalNotes: str  # noqa: N815
    customInputs: dict[str, Any]  # noqa: N815
    startTime: UtcTime  # noqa: N815
    endTime: UtcTime  # noqa: N815
    organizer: Organizer
    responses: dict[str, Labelled]
    userFieldsResponses: dict[str, Labelled]  # noqa: N815
    attendees: list[Attendee] = Field(min_length=1, description="the booker first")
    location: str | None
    destinationCalendar: None  # noqa: N815
    hideCalendarNotes: bool  # noqa: N815
    requiresConfirmation: bool  # noqa: N815
    eventTypeId: int  # noqa: N815
    seatsShowAttendees: bool  # noqa: N815
    seatsPerTimeSlot: int | None  # noqa: N815
    uid: str
    eventTitle: str  # noqa: N815
    eventDescription: str | None  # noqa: N815
    price: int = Field(description="minor units of `currency`")
    currency: str
    length: int = Field(description="minutes")
    bookingId: int  # noqa: N815
    metadata: dict[str, Any]
    status: BookingStatus
    team: Team | None
    rescheduleId: int | None  # noqa: N815
    rescheduleUid: str | None  # noqa: N815
    rescheduleStartTime: UtcTime | None  # noqa: N815
    rescheduleEndTime: UtcTime | None  # noqa: N815
    cancellationReason: str | None  # noqa: N815
    rejectionReason: str | None  # noqa: N815
    triggerEvent: WebhookTrigger  # noqa: N815


# What a trigger's payload has beyond the booking.
_EXTRA: dict[WebhookTrigger, dict[str, Any]] = {
    WebhookTrigger.BOOKING_CANCELLED: {
        "cancelledBy": (CancelledBy | None, Field(description="who cancelled: a role")),
    },
    WebhookTrigger.BOOKING_PAID: {
        "paid": (Literal[True], ...),
        "paymentId": (str, Field(description="the payment provider's id")),
    },
    **{
        trigger: {"noShow": (list[Absent], Field(min_length=1, description="who did not join"))}
        for trigger in NO_SHOW_TRIGGERS
    },
}


def _name(trigger: WebhookTrigger) -> str:
    return "".join(word.capitalize() for word in trigger.value.split("_"))


def _payload_model(trigger: WebhookTrigger) -> type[BookingPayload]:
    return create_model(
        f"{_name(trigger)}Payload",
        __base__=BookingPayload,
        __doc__=BookingPayload.__doc__,
        triggerEvent=(Literal[trigger.value], ...),
        **_EXTRA.get(trigger, {}),
    )


PAYLOADS: dict[WebhookTrigger, type[BookingPayload]] = {
    trigger: _payload_model(trigger) for trigger in WebhookTrigger
}


def _envelope_model(trigger: WebhookTrigger) -> type[BaseModel]:
    return create_model(
        f"{_name(trigger)}Webhook",
        __base__=_Body,
        __doc__=f"The body of a {trigger.value} webhook without a payload template.",
        triggerEvent=(Literal[trigger.value], ...),
        createdAt=(UtcTime, Field(description="when the booking was made, or the trigger due")),
        payload=(PAYLOADS[trigger], ...),
    )


WEBHOOKS: dict[WebhookTrigger, type[BaseModel]] = {t: _envelope_model(t) for t in WebhookTrigger}


def payload_json(trigger: WebhookTrigger, fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` as its trigger's model dumps them: refused if the model does not allow them."""
    return PAYLOADS[trigger].model_validate(fields).model_dump(mode="json")


def json_schema(trigger: WebhookTrigger) -> dict[str, Any]:
    schema = WEBHOOKS[trigger].model_json_schema()
    return {"$schema": DIALECT, "$id": f"{trigger.value}.json", **schema}


def rendered() -> dict[str, str]:
    """Each schema file's name and its exact text."""
    return {
        f"{trigger.value}.json": json.dumps(json_schema(trigger), indent=2, sort_keys=True) + "\n"
        for trigger in WebhookTrigger
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tasks.delivery.schemas",
        description=f"Write each trigger's webhook JSON Schema to {SCHEMA_DIR}.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file differs"
    )
    args = parser.parse_args(argv)
    files = rendered()
    stale = sorted(
        name
        for name, text in files.items()
        if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != text
    )
    extra = sorted(p.name for p in SCHEMA_DIR.glob("*.json") if p.name not in files)
    if args.check:
        for name in stale:
            sys.stderr.write(f"differs from the models: {SCHEMA_DIR / name}\n")
        for name in extra:
            sys.stderr.write(f"no trigger of that name: {SCHEMA_DIR / name}\n")
        if stale or extra:
            sys.stderr.write("to write them: python -m tasks.delivery.schemas\n")
        return 1 if stale or extra else 0
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (SCHEMA_DIR / name).write_text(files[name])
    for name in extra:
        (SCHEMA_DIR / name).unlink()
    sys.stdout.write(f"{len(files)} schemas in {SCHEMA_DIR}, {len(stale) + len(extra)} changed\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

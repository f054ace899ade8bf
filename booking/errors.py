"""Typed errors of the booking side. Messages name fields, never personal data.

What an error repeats of its input (a uid, a field name) is cut to `EXCERPT_CHARS`.
"""

EXCERPT_CHARS = 80


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """`text` as a string of at most `limit` characters, marked where it was cut."""
    text = str(text)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


class BookingError(Exception):
    """Base of every error `create_booking` raises on bad input."""


class InvalidBookingRequest(BookingError):
    """The request failed validation; `fields` names what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.fields = problems
        detail = "; ".join(
            f"{excerpt(field)}: {excerpt(message, 200)}" for field, message in problems.items()
        )
        super().__init__(f"invalid booking request: {detail}")


class UnknownEventType(BookingError):
    def __init__(self, event_type_id: int):
        self.event_type_id = event_type_id
        super().__init__(f"event_type_id: no event type with id {event_type_id}")


class RescheduleTargetNotFound(BookingError):
    def __init__(self, uid: str):
        self.uid = uid
        super().__init__(f"reschedule_uid: no booking with uid {excerpt(uid)}")


class RescheduleTargetCancelled(BookingError):
    def __init__(self, uid: str):
        self.uid = uid
        super().__init__(
            f"reschedule_uid: booking {excerpt(uid)} is cancelled and cannot be rescheduled"
        )


class UnknownOutboxEvent(LookupError):
    """A flow or the dispatcher was given an event id the outbox does not hold."""


class TransitionRefused(BookingError):
    """A move the booking cannot make: unknown, or not in a status the move starts from.

    Nothing was written. `status` is the booking's status, or None when no booking has the
    uid."""

    def __init__(self, uid: str, move: str, status: str | None, detail: str | None = None):
        self.uid, self.move, self.status = uid, move, status
        why = detail or (
            "no booking with this uid" if status is None else f"the booking is {status}"
        )
        super().__init__(f"cannot {move} booking {excerpt(uid)}: {why}")

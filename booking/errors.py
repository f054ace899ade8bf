"""Typed errors of the booking side. Messages name fields, never personal data."""


class BookingError(Exception):
    """Base of every error `create_booking` raises on bad input."""


class InvalidBookingRequest(BookingError):
    """The request failed validation; `fields` names what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.fields = problems
        detail = "; ".join(f"{field}: {message}" for field, message in problems.items())
        super().__init__(f"invalid booking request: {detail}")


class UnknownEventType(BookingError):
    def __init__(self, event_type_id: int):
        self.event_type_id = event_type_id
        super().__init__(f"event_type_id: no event type with id {event_type_id}")


class RescheduleTargetNotFound(BookingError):
    def __init__(self, uid: str):
        self.uid = uid
        super().__init__(f"reschedule_uid: no booking with uid {uid}")


class RescheduleTargetCancelled(BookingError):
    def __init__(self, uid: str):
        self.uid = uid
        super().__init__(f"reschedule_uid: booking {uid} is cancelled and cannot be rescheduled")


class UnknownOutboxEvent(LookupError):
    """A flow or the dispatcher was given an event id the outbox does not hold."""

"""Vocabulary shared by the models, the payload and the flows."""

from enum import StrEnum


class BookingStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    PENDING = "PENDING"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


class BookingEvent(StrEnum):
    """What a committed change did to a booking: the kind of its outbox event."""

    CREATED = "CREATED"  # booked, or rescheduled into a new booking
    CONFIRMED = "CONFIRMED"  # PENDING -> ACCEPTED by the host
    REJECTED = "REJECTED"  # PENDING -> REJECTED by the host
    CANCELLED = "CANCELLED"  # PENDING or ACCEPTED -> CANCELLED
    PAID = "PAID"  # a paid event type's payment recorded


class CancelledBy(StrEnum):
    HOST = "host"
    ATTENDEE = "attendee"
    SYSTEM = "system"


class WebhookTrigger(StrEnum):
    BOOKING_CREATED = "BOOKING_CREATED"
    BOOKING_RESCHEDULED = "BOOKING_RESCHEDULED"
    BOOKING_REQUESTED = "BOOKING_REQUESTED"
    BOOKING_CANCELLED = "BOOKING_CANCELLED"
    BOOKING_REJECTED = "BOOKING_REJECTED"
    BOOKING_PAYMENT_INITIATED = "BOOKING_PAYMENT_INITIATED"
    BOOKING_PAID = "BOOKING_PAID"
    MEETING_STARTED = "MEETING_STARTED"
    MEETING_ENDED = "MEETING_ENDED"
    AFTER_HOSTS_CAL_VIDEO_NO_SHOW = "AFTER_HOSTS_CAL_VIDEO_NO_SHOW"
    AFTER_GUESTS_CAL_VIDEO_NO_SHOW = "AFTER_GUESTS_CAL_VIDEO_NO_SHOW"


# Triggers sent later, as scheduled rows: at the meeting's start and end, and after it starts
# when a host or a guest did not join.
MEETING_TRIGGERS = (WebhookTrigger.MEETING_STARTED, WebhookTrigger.MEETING_ENDED)
NO_SHOW_TRIGGERS = (
    WebhookTrigger.AFTER_HOSTS_CAL_VIDEO_NO_SHOW,
    WebhookTrigger.AFTER_GUESTS_CAL_VIDEO_NO_SHOW,
)


class TimeUnit(StrEnum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"


class WorkflowTrigger(StrEnum):
    BEFORE_EVENT = "BEFORE_EVENT"
    AFTER_EVENT = "AFTER_EVENT"
    NEW_EVENT = "NEW_EVENT"
    RESCHEDULE_EVENT = "RESCHEDULE_EVENT"
    EVENT_CANCELLED = "EVENT_CANCELLED"


class WorkflowAction(StrEnum):
    EMAIL_HOST = "EMAIL_HOST"
    EMAIL_ATTENDEE = "EMAIL_ATTENDEE"
    EMAIL_ADDRESS = "EMAIL_ADDRESS"
    SMS_ATTENDEE = "SMS_ATTENDEE"
    SMS_NUMBER = "SMS_NUMBER"


class ReminderMethod(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"


class WorkStatus(StrEnum):
    """Life of a row that a periodic sweep delivers later."""

    PENDING = "PENDING"
    SENT = "SENT"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

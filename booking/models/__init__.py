"""SQLModel tables, grouped by concern. Importing this package registers every table."""

from booking.models.accounts import ChatAccount, Membership, PushDevice, Team, User
from booking.models.bookings import (
    Attendee,
    Booking,
    BookingHost,
    Contact,
    EventType,
    EventTypeHost,
    Payment,
)
from booking.models.outbox import OutboxEvent
from booking.models.providers import ProviderLease
from booking.models.webhooks import (
    ScheduledTrigger,
    WebhookDelivery,
    WebhookRedelivery,
    WebhookSubscription,
)
from booking.models.work import PlannedSweep
from booking.models.workflows import (
    NOTICE_KEY_PREFIX,
    Workflow,
    WorkflowActivation,
    WorkflowReminder,
    WorkflowStep,
)

__all__ = [
    "NOTICE_KEY_PREFIX",
    "Attendee",
    "Booking",
    "BookingHost",
    "ChatAccount",
    "Contact",
    "EventType",
    "EventTypeHost",
    "Membership",
    "OutboxEvent",
    "Payment",
    "PlannedSweep",
    "ProviderLease",
    "PushDevice",
    "ScheduledTrigger",
    "Team",
    "User",
    "WebhookDelivery",
    "WebhookRedelivery",
    "WebhookSubscription",
    "Workflow",
    "WorkflowActivation",
    "WorkflowReminder",
    "WorkflowStep",
]

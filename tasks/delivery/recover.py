"""Recovery after a subscriber's long outage: every message to one subscription that ended
FAILED within a window, sent again with its original `webhook-id` and body.

A message ended FAILED when it has attempts in the window, none of its attempts (ever)
succeeded, and no redelivery of it is still pending (the due-work sweep has not given up on
those yet). One booking's messages go in commit order, one after another; a booking whose
message fails again keeps its later ones back, so nothing arrives out of order. A message
already delivered (by an earlier recovery, a replay or a redelivery) is not sent again.
"""

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, col, func, select

from booking.db import transaction
from booking.enums import WorkStatus
from booking.models import WebhookDelivery, WebhookRedelivery
from tasks.delivery import store
from tasks.delivery.resend import find_message
from tasks.delivery.send import send_webhook


@dataclass(frozen=True)
class Recovered:
    """What became of one message in a recovery."""

    webhook_id: str
    trigger: str
    booking_uid: str
    outcome: str  # delivered, already-delivered, inactive, deactivated, failed: ..., held: ...


def failed_messages(
    session: Session, subscription_id: int, since: datetime, until: datetime
) -> list[list[str]]:
    """The `webhook-id`s of the subscription's messages that ended FAILED in the window,
    one list per booking, each in the order its messages were committed."""
    delivered = select(WebhookDelivery.message_id).where(
        col(WebhookDelivery.status_code).between(200, 299)
    )
    pending = select(WebhookRedelivery.message_id).where(
        WebhookRedelivery.status == WorkStatus.PENDING
    )
    rows = session.exec(
        select(WebhookDelivery.message_id, func.min(WebhookDelivery.created_at))
        .where(
            WebhookDelivery.subscription_id == subscription_id,
            col(WebhookDelivery.created_at) >= since,
            col(WebhookDelivery.created_at) <= until,
            col(WebhookDelivery.message_id).not_in(delivered),
            col(WebhookDelivery.message_id).not_in(pending),
        )
        .group_by(col(WebhookDelivery.message_id))
    ).all()
    messages = []
    for webhook_id, first_attempt in rows:
        message = find_message(session, webhook_id)
        committed = message.committed_at or message.created_at
        when = datetime.fromisoformat(committed) if committed else first_attempt
        messages.append((message.booking_uid, when, message.position, webhook_id))
    messages.sort()
    return [
        [webhook_id for *_, webhook_id in booking]
        for _, booking in groupby(messages, key=lambda m: m[0])
    ]


@task(name="find failed messages", cache_policy=NO_CACHE)
def find_failed(subscription_id: int, since: datetime, until: datetime) -> list[list[str]]:
    """The messages to recover, per booking in commit order."""
    with transaction() as session:
        found = failed_messages(session, subscription_id, since, until)
    get_run_logger().info(
        "%d message(s) of %d booking(s) ended FAILED between %s and %s",
        sum(map(len, found)),
        len(found),
        since.isoformat(),
        until.isoformat(),
    )
    return found


def _recovery_name() -> str:
    from prefect.runtime import task_run

    ids = task_run.parameters["webhook_ids"]
    return f"recover {ids[0]}" + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")


@task(name="recover a booking's messages", task_run_name=_recovery_name, cache_policy=NO_CACHE)
def recover_booking(webhook_ids: list[str]) -> list[Recovered]:
    """Send one booking's failed messages again, in order; after one fails, the rest wait."""
    results: list[Recovered] = []
    held = None
    for webhook_id in webhook_ids:
        with transaction() as session:
            message = find_message(session, webhook_id)
            attempts = store.attempts_so_far(session, webhook_id)
        if held is not None:
            outcome = f"held: {held} failed again"
        else:
            try:
                outcome = send_webhook(message, attempt_no=attempts + 1).outcome
            except Exception as exc:  # the subscriber is still failing: say so, keep order
                outcome = f"failed: {type(exc).__name__}: {exc}"[:200]
                held = webhook_id
        results.append(Recovered(webhook_id, message.trigger, message.booking_uid, outcome))
    return results


@task(name="summarise recovery", cache_policy=NO_CACHE)
def summarise_recovery(
    subscription_id: int, since: datetime, until: datetime, results: list[list[Recovered]]
) -> dict[str, int]:
    """A table in the UI of every message the recovery looked at and what became of it."""
    rows = [
        {
            "webhook-id": r.webhook_id,
            "trigger": r.trigger,
            "booking": r.booking_uid,
            "outcome": r.outcome,
        }
        for booking in results
        for r in booking
    ]
    counts = {
        "messages": len(rows),
        "delivered": sum(r["outcome"] == "delivered" for r in rows),
        "already delivered": sum(r["outcome"] == "already-delivered" for r in rows),
        "failed or held": sum(r["outcome"].startswith(("failed", "held")) for r in rows),
    }
    create_table_artifact(
        key=f"recover-subscription-{subscription_id}",
        table=rows or [{"webhook-id": "-", "trigger": "-", "booking": "-", "outcome": "none"}],
        description=(
            f"Recovery of subscription {subscription_id}, {since.isoformat()} to "
            f"{until.isoformat()}: " + ", ".join(f"{n} {k}" for k, n in counts.items())
        ),
    )
    get_run_logger().info(", ".join(f"{n} {k}" for k, n in counts.items()))
    return counts

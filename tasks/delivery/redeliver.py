"""Long-horizon redelivery: a message whose in-task retries all failed is sent again by the
due-work sweep, with its original `webhook-id` and body, on the long backoff of
`webhook_redelivery_delays_seconds`; then it stays FAILED with its history. A subscription
whose every delivery failed for `webhook_disable_after_hours` is deactivated. A message
held back for an earlier one of its booking (tasks/delivery/order.py) is sent the same way
once nothing earlier is outstanding."""

import time
from datetime import datetime, timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from prefect.utilities.math import clamped_poisson_interval
from sqlmodel import col, select

from booking.db import configured_engine, transaction
from booking.enums import WorkStatus
from booking.models import Booking, WebhookRedelivery
from booking.settings import get_settings
from booking.timeutil import utcnow
from tasks.delivery import store
from tasks.delivery.message import WebhookMessage
from tasks.delivery.order import waits_for
from tasks.delivery.send import DeliveryReport, send_webhook
from tasks.duework import Delivered, Outcome, settle
from tasks.retry import JITTER_FACTOR, is_transient, retry_schedule


@task(
    name="redeliver webhook",
    task_run_name="redeliver webhook #{redelivery_id}",
    cache_policy=NO_CACHE,
)
def redeliver_webhook(redelivery_id: int, now: datetime) -> Outcome:
    """Send again a message whose in-task retries failed, with its original `webhook-id`
    and body, on the long backoff of `webhook_redelivery_delays_seconds`.

    A message that was held back for an earlier one and never sent is delivered as it would
    have been without the wait: with the webhook step's in-task retries, then, if it still
    fails, the long backoff from its first delay."""
    delays = get_settings().webhook_redelivery_delays_seconds
    with transaction() as session:
        message = WebhookMessage.model_validate(
            session.get_one(WebhookRedelivery, redelivery_id).message
        )
        attempts_before = store.attempts_so_far(session, message.message_id)
    first_delivery = attempts_before == 0

    def schedule(attempts: int) -> datetime | None:
        step = attempts - 1 if first_delivery else attempts  # `attempts` counts this sweep's
        return now + timedelta(seconds=delays[step]) if step < len(delays) else None

    def deliver(row_id: int) -> Delivered:
        return _redeliver(row_id, message, attempts_before + 1)

    return settle(WebhookRedelivery, redelivery_id, deliver, schedule)


@task(name="release held messages", cache_policy=NO_CACHE)
def release_held(redelivery_ids: list[int], outcomes: list[Outcome | BaseException]) -> bool:
    """After a sweep: if a message it settled (sent, skipped, or failed for good) had a later
    message of its booking waiting behind it, start a sweep now for that one, rather than
    leave it for the next scheduled sweep. Returns whether one was started."""
    from prefect.client.orchestration import get_client

    from handoff.relay import release_held as start_if_held

    others = [
        row for row, outcome in zip(redelivery_ids, outcomes, strict=True) if outcome != "waiting"
    ]
    if "waiting" not in outcomes or not others:
        return False
    with transaction() as session:
        settled: dict[str, datetime] = {}
        rows: list[int] = []
        for row_id, uid, committed_at in session.exec(
            select(WebhookRedelivery.id, Booking.uid, WebhookRedelivery.committed_at)
            .join(WebhookRedelivery, col(WebhookRedelivery.booking_id) == col(Booking.id))
            .where(
                col(WebhookRedelivery.id).in_(others),
                col(WebhookRedelivery.status).in_(SETTLED),
                col(WebhookRedelivery.committed_at).is_not(None),
            )
        ):
            settled[uid] = min(committed_at, settled.get(uid, committed_at))
            rows.append(row_id)
    if not settled:
        return False
    with get_client(sync_client=True) as client:
        because = f"redeliveries {sorted(rows)}"
        return start_if_held(configured_engine(), client, settled, because=because)


# A message in one of these states holds nothing back any more.
SETTLED = (WorkStatus.SENT, WorkStatus.SKIPPED, WorkStatus.FAILED)


def _redeliver(redelivery_id: int, message: WebhookMessage, attempt_no: int) -> Delivered:
    with transaction() as session:
        if reason := waits_for(session, message):
            return "waiting", reason
    first_delivery = attempt_no == 1
    try:
        if first_delivery:
            report = _send_with_step_retries(redelivery_id, message, attempt_no)
        else:
            report = send_webhook(message, attempt_no=attempt_no)
    except Exception as exc:
        if is_transient(exc):
            _deactivate_if_failing_too_long(message)
        raise
    return ("sent", None) if report.sent else ("skipped", f"subscription {report.outcome}")


def _send_with_step_retries(
    redelivery_id: int, message: WebhookMessage, attempt_no: int
) -> DeliveryReport:
    """The webhook step's retries (`retry_schedule("webhook")`: count, doubling delays,
    jitter), for a message released from a wait. The sweep's claim on the row is renewed
    before each wait, so no overlapping sweep takes the row meanwhile."""
    retries, first_delay = retry_schedule("webhook")
    waits = exponential_backoff(backoff_factor=first_delay)(retries) if retries else []
    for n, wait in enumerate(waits):
        try:
            return send_webhook(message, attempt_no=attempt_no + n)
        except Exception as exc:
            if not is_transient(exc):
                raise
            wait = clamped_poisson_interval(wait, clamping_factor=JITTER_FACTOR) if wait else 0
            get_run_logger().info(
                "%s to %s: %s; retry %d of %d in %.1f s",
                message.trigger,
                message.host,
                type(exc).__name__,
                n + 1,
                retries,
                wait,
            )
            _renew_claim(redelivery_id, wait)
            time.sleep(wait)
    return send_webhook(message, attempt_no=attempt_no + len(waits))


def _renew_claim(redelivery_id: int, wait: float) -> None:
    lease = timedelta(seconds=get_settings().due_lease_seconds + wait)
    with transaction() as session:
        row = session.get_one(WebhookRedelivery, redelivery_id)
        row.claimed_until = utcnow() + lease
        session.add(row)


def _deactivate_if_failing_too_long(message: WebhookMessage) -> None:
    """A subscription whose every delivery failed for `webhook_disable_after_hours` is
    deactivated with the reason recorded; its pending redeliveries are then skipped."""
    hours = get_settings().webhook_disable_after_hours
    with transaction() as session:
        since = store.failing_since(session, message.subscription_id)
        if since is None or utcnow() - since < timedelta(hours=hours):
            return
        store.deactivate(
            session,
            message.subscription_id,
            f"every delivery failed since {since:%Y-%m-%d %H:%M} UTC ({hours:g} h)",
        )
    get_run_logger().warning(
        "%s failed every delivery for %g hours: subscription #%s deactivated",
        message.host,
        hours,
        message.subscription_id,
    )

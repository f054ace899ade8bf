"""Recovery after a subscriber's outage (`booking deliveries recover`): every message to one
subscription that ended FAILED in a window, sent again with its original `webhook-id` and
body, one booking's messages in commit order. Ends with a table of what it sent.
Running it twice sends nothing twice: a delivered message is skipped."""

from datetime import datetime

from prefect import flow

from booking.timeutil import utcnow
from deployments.names import RECOVER_DELIVERIES
from flows.results import NO_RESULTS
from tasks.delivery.recover import find_failed, recover_booking, summarise_recovery


@flow(
    name=RECOVER_DELIVERIES.flow,
    flow_run_name="recover-subscription-{subscription_id}",
    log_prints=False,
    **NO_RESULTS,
)
def recover_deliveries(
    subscription_id: int, since: datetime, until: datetime | None = None
) -> dict[str, int]:
    """Send again what ended FAILED to the subscription between `since` and `until` (now)."""
    until = until or utcnow()
    bookings = find_failed(subscription_id, since, until)
    sent = [recover_booking.submit(ids) for ids in bookings]
    return summarise_recovery(subscription_id, since, until, [s.result() for s in sent])

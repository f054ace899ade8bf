"""An operator's replay of one webhook message (`booking replay --message`): sent at once,
as asked, with its original `webhook-id` and body, and logged as one more attempt."""

from prefect import flow

from flows.results import NO_RESULTS
from tasks.delivery.resend import resend
from tasks.delivery.send import DeliveryReport


@flow(
    name="replay-webhook-message",
    flow_run_name="replay {webhook_id}",
    log_prints=False,
    **NO_RESULTS,
)
def replay_message(webhook_id: str) -> DeliveryReport:
    """Send one message again, with its original `webhook-id` and body, logged as an attempt."""
    return resend(webhook_id)

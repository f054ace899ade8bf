"""The webhooks concern of a booking's post-commit work (DESIGN.md section 4).

Runs as a subflow of `booking-post-commit`, or alone from its own deployment to re-run this
concern for one booking.
"""

from prefect import flow, get_run_logger

from deployments.names import WEBHOOKS
from tasks.snapshot import load_snapshot


@flow(name=WEBHOOKS.flow, flow_run_name="webhooks-{booking_uid}", log_prints=False)
def booking_post_commit_webhooks(event_id: str, booking_uid: str) -> str:
    """Webhooks of one committed booking, from its outbox snapshot."""
    payload = load_snapshot(event_id, booking_uid)
    get_run_logger().info(
        "booking %s (%s): webhooks steps arrive with their own flow",
        payload.booking_uid,
        "reschedule" if payload.is_reschedule else "new booking",
    )
    return payload.booking_uid

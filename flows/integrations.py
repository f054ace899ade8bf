"""The integrations concern of a booking's post-commit work (DESIGN.md section 4).

Mobile push to the host (one task per device), chat sync, Customer.io identify of every
booked host, contact sync and analytics. The steps run concurrently and independently: one
failing provider fails its own step and, in the end, this run, never the other steps. A step
that is not configured completes and says why in its log.
"""

from prefect import flow, tags
from prefect.states import State

from booking.settings import get_settings
from deployments.names import INTEGRATIONS, booking_tag
from flows.outcome import conclude
from tasks.integrations.steps import (
    find_push_devices,
    identify_hosts,
    send_analytics,
    send_push,
    sync_chat,
    sync_contacts,
)
from tasks.retry import with_policy
from tasks.snapshot import load_snapshot


@flow(name=INTEGRATIONS.flow, flow_run_name="integrations-{booking_uid}", log_prints=False)
def booking_post_commit_integrations(event_id: str, booking_uid: str) -> State:
    """Integrations of one committed booking, from its outbox snapshot."""
    settings = get_settings()
    policy = {
        "retries": settings.provider_retries,
        "base_seconds": settings.provider_retry_base_seconds,
    }
    payload = load_snapshot(event_id, booking_uid)
    with tags(booking_tag(booking_uid)):
        devices = find_push_devices(payload, return_state=True)
        futures = {
            f"push to device {device.id}": with_policy(send_push, **policy)
            .with_options(task_run_name=f"send push to host device {device.id}")
            .submit(payload, device)
            for device in (devices.result() if devices.is_completed() else [])
        }
        for name, step in (
            ("chat sync", sync_chat),
            ("customer.io identify", identify_hosts),
            ("contact sync", sync_contacts),
            ("analytics", send_analytics),
        ):
            futures[name] = with_policy(step, **policy).submit(payload)
        states = {"find push devices": devices}
        for name, future in futures.items():
            future.wait()
            states[name] = future.state
    return conclude("integrations", booking_uid, states)

"""The integrations concern of a booking's post-commit work.

Mobile push to the host (one task per device), chat sync, Customer.io identify of every
booked host, contact sync and analytics. The steps run concurrently and independently: one
failing provider fails its own step and, in the end, this run, never the other steps. A step
that is not configured completes and says why in its log. See docs/architecture.md.
"""

from prefect import flow, tags, unmapped
from prefect.futures import PrefectFuture

from deployments.names import INTEGRATIONS, booking_tag
from tasks.integrations.steps import (
    find_push_devices,
    identify_hosts,
    send_analytics,
    send_push,
    sync_chat,
    sync_contacts,
)
from tasks.snapshot import load_snapshot


@flow(name=INTEGRATIONS.flow, flow_run_name="integrations-{booking_uid}", log_prints=False)
def booking_post_commit_integrations(event_id: str, booking_uid: str) -> list[PrefectFuture]:
    """Integrations of one committed booking, from its outbox snapshot.

    The run ends Failed when any step failed after its retries; the other steps still run.
    """
    payload = load_snapshot(event_id, booking_uid)
    with tags(booking_tag(booking_uid)):
        steps = [
            sync_chat.submit(payload),
            identify_hosts.submit(payload),
            sync_contacts.submit(payload),
            send_analytics.submit(payload),
        ]
        pushes = send_push.map(find_push_devices.submit(payload), unmapped(payload))
    return [*pushes, *steps]

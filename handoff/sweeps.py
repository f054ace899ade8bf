"""Due-work sweeps planned for when work falls due, rather than every minute.

Whatever stores due rows (a booking's reminders and no-show checks, its meeting triggers, a
webhook's redelivery), and every sweep as it ends, calls `plan_sweep`: it asks Prefect for a
`deliver-due-work` run when the earliest pending row falls due, rounded up to a whole period
(`BOOKING_DUE_SWEEP_SECONDS`, a minute), unless a sweep is planned by then. So a sweep runs
when there is work, at most one planned a period, and a row still goes out within about a
period of its due time. The deployment's own schedule runs rarely, as the net under this: a
sweep that could not be planned (Prefect unreachable at that moment), or a planned run that
was lost. A paused deployment gets no planned sweeps; nothing is recorded for it, so the
first row stored after it is resumed plans its sweep (each row stored while it is paused asks
Prefect once).
"""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from booking import sweeps
from booking.db import session_scope
from deployments.names import DELIVER_DUE_WORK
from handoff.runs import schedule_due_work

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

# Records of planned sweeps are kept this long after their time, then dropped.
KEEP_PLANNED = timedelta(days=1)


def plan_sweep(
    engine: Engine,
    client: "SyncPrefectClient",
    now: datetime,
    *,
    period: int,
    after_sweep: bool = False,
) -> datetime | None:
    """Plan a sweep for the period in which the earliest pending row falls due; a sweep that
    just ran (`after_sweep`) plans the next no sooner than a period on, so work it left (a
    failed row, a held message) is looked at once a period. Returns the time planned, or
    None when nothing is pending, a sweep is planned by then, or the deployment is paused.
    Raises what Prefect raised."""
    with session_scope(engine) as session:
        if after_sweep:
            sweeps.prune(session, now - KEEP_PLANNED)
        due = sweeps.earliest_pending(session, now)
        if due is None:
            return None
        not_before = now + timedelta(seconds=period) if after_sweep else now
        at = sweeps.round_up(max(due, not_before), period)
        if sweeps.planned_by(session, now, at) is not None or not sweeps.reserve(session, at):
            return None
    planned = None
    try:
        deployment = client.read_deployment_by_name(DELIVER_DUE_WORK.full_name)
        if not deployment.paused:
            schedule_due_work(client, deployment.id, at)
            planned = at
    finally:
        if planned is None:  # not planned after all: the next caller may plan this period
            with session_scope(engine) as session:
                sweeps.forget(session, at)
    return planned

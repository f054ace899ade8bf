"""Periodic delivery of due work: meeting triggers, no-show checks, reminders, and webhooks
whose in-task retries failed, sent again on a long backoff.

A sweep runs when work falls due: whatever stores due rows, and each sweep as it ends, plans
one for the minute the earliest pending row is due (handoff/sweeps.py); prefect.yaml's
schedule, every ten minutes, is the net under that. Each sweep claims what is due (two
overlapping sweeps never claim one row), delivers it against the booking's current state,
and shows how many items it claimed, sent, skipped and failed (a sweep that found nothing
due shows only its claim). A subscriber or provider that fails is an expected outcome,
recorded on its row and shown in the summary: the run still completes, so an alert on failed
runs is not paged for every outage. It fails when the sweep could not do its work (its
database, a bug). Call it with `now` to sweep as of a time.
"""

from datetime import datetime

from prefect import allow_failure, flow, unmapped
from prefect.states import Completed, Failed, State

from booking.timeutil import utcnow
from deployments.names import DELIVER_DUE_WORK
from flows.results import NO_RESULTS
from tasks.delivery.redeliver import redeliver_webhook, release_held
from tasks.duework import claim_due, plan_next_sweep, summarise_sweep
from tasks.scheduling.due import deliver_due_trigger, send_due_reminder


def _run_name() -> str:
    return f"due-work-{utcnow():%Y%m%d-%H%M%S}"


@flow(name=DELIVER_DUE_WORK.flow, flow_run_name=_run_name, log_prints=False, **NO_RESULTS)
def deliver_due_work(now: datetime | None = None) -> State:
    """Deliver every trigger, reminder and redelivery due at `now` (default: the current time),
    then plan the sweep for the next one due.

    A failed item is tried again by a later sweep; the run ends Failed only when the sweep
    itself failed.
    """
    try:
        return _sweep(now or utcnow())
    finally:
        plan_next_sweep(after_sweep=True)  # also after a failed sweep: its rows are still due


def _sweep(now: datetime) -> State:
    claimed = claim_due(now)
    redeliveries = redeliver_webhook.map(claimed.redeliveries, unmapped(now))
    deliveries = [
        *deliver_due_trigger.map(claimed.triggers),
        *send_due_reminder.map(claimed.reminders),
        *redeliveries,
    ]
    if not deliveries:
        return Completed(message="nothing due")
    summary = summarise_sweep.submit(now, allow_failure(deliveries))
    if len(claimed.redeliveries) > 1:  # one may have held back another
        release_held.submit(claimed.redeliveries, allow_failure(list(redeliveries))).wait()
    counts = summary.result()
    said = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
    if counts["broken"]:
        return Failed(message=f"the sweep failed to do its work: {said}")
    return Completed(message=said)

"""The outbox relay: dispatch again every event whose runs were not confirmed created, and
finish every dispatched event: record how its runs ended, or restart runs that crashed or
were left behind by a worker that died.

A run is restarted in place (set to AwaitingRetry, as the UI's Retry does), so the booking
keeps one run with its whole history; its steps are idempotent, so what a crashed attempt
already did is not done twice. An event whose runs crashed `run_max_restarts` times is
finished as Crashed, for an operator to look at (`booking outbox list --unfinished`).
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from booking import outbox
from booking.db import session_scope
from booking.models import OutboxEvent
from booking.models.outbox import COMPLETED
from booking.settings import Settings
from booking.timeutil import utcnow
from handoff.dispatch import PostCommitDispatcher
from handoff.runs import REPLAY_TAG, start_due_work

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayReport:
    claimed: int
    dispatched: int
    failed: int


def relay_pending(
    *,
    engine: Engine,
    dispatcher: PostCommitDispatcher,
    settings: Settings,
    now: datetime | None = None,
) -> RelayReport:
    """Claim undispatched events older than the grace period and dispatch each once more."""
    event_ids = outbox.claim_pending(
        engine,
        older_than=timedelta(seconds=settings.relay_grace_seconds),
        lease=timedelta(seconds=settings.relay_lease_seconds),
        limit=settings.relay_batch_size,
        now=now,
    )
    futures = [dispatcher.submit(event_id) for event_id in event_ids]
    dispatched = 0
    for future in futures:
        try:
            outcome = future.result(timeout=settings.relay_lease_seconds)
        except Exception:
            logger.exception("relay dispatch failed")
            continue
        dispatched += outcome.dispatched
    report = RelayReport(
        claimed=len(event_ids), dispatched=dispatched, failed=len(event_ids) - dispatched
    )
    if event_ids:
        logger.info(
            "outbox relay: %d claimed, %d dispatched, %d still pending",
            report.claimed,
            report.dispatched,
            report.failed,
        )
    return report


READ_LIMIT = 200  # flow runs per API read (the server's default page limit)
# A run a worker took but never started (the worker died in between).
PENDING_STALE = timedelta(minutes=1)


@dataclass(frozen=True)
class FinishReport:
    finished: int
    restarted: int
    waiting: int


def finish_dispatched(
    *,
    engine: Engine,
    client: "SyncPrefectClient",
    settings: Settings,
    now: datetime | None = None,
) -> FinishReport:
    """Look at every dispatched, unfinished event once: record the outcome of those whose
    runs are final, restart runs that crashed or went stale, leave the rest for later."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    now = now or utcnow()
    finished, restarted, waiting = 0, 0, []
    while events := outbox.claim_unfinished(
        engine,
        older_than=timedelta(seconds=settings.relay_grace_seconds),
        lease=timedelta(seconds=settings.relay_lease_seconds),
        limit=settings.relay_batch_size,
        now=now,
    ):
        run_ids = [run_id for event in events for run_id in event.flow_run_ids.values()]
        runs = {
            str(run.id): run
            for start in range(0, len(run_ids), READ_LIMIT)
            for run in client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=run_ids[start : start + READ_LIMIT])  # type: ignore[arg-type]
                ),
                limit=READ_LIMIT,
            )
        }
        outcomes: dict[str, str] = {}
        restarts: list[str] = []
        for event in events:
            event_runs = [runs.get(run_id) for run_id in event.flow_run_ids.values()]
            stuck = [run for run in event_runs if run and _needs_restart(run, now, settings)]
            if stuck and event.restarts < settings.run_max_restarts:
                for run in stuck:
                    _restart(client, run)
                restarts.append(event.event_id)
                logger.warning(
                    "booking %s: restarted %d crashed or stale run(s) (restart %d of %d)",
                    event.booking_uid,
                    len(stuck),
                    event.restarts + 1,
                    settings.run_max_restarts,
                )
            elif stuck:  # restarted run_max_restarts times already: left for an operator
                outcomes[event.event_id] = "Crashed"
            elif all(_is_final(run) for run in event_runs):
                outcomes[event.event_id] = _outcome(event_runs)
            else:
                waiting.append(event.event_id)
        outbox.record_finished(engine, outcomes)
        settled: dict[str, datetime] = {}
        for event in sorted(events, key=lambda e: e.created_at, reverse=True):
            if event.event_id in outcomes:  # the booking's earliest finished event counts
                settled[event.booking_uid] = event.created_at
        release_held(engine, client, settled, because="event ended")
        outbox.record_restarts(engine, restarts)
        finished, restarted = finished + len(outcomes), restarted + len(restarts)
    outbox.release(engine, waiting)
    report = FinishReport(finished=finished, restarted=restarted, waiting=len(waiting))
    if finished or restarted:
        logger.info(
            "outbox relay: %d finished, %d restarted, %d still running",
            report.finished,
            report.restarted,
            report.waiting,
        )
    return report


def record_run_end(
    *, engine: Engine, client: "SyncPrefectClient", event_id: str, run: "FlowRun"
) -> str | None:
    """Record an event's outcome as soon as one of its runs ends (a flow state hook calls
    this), rather than at the relay's next pass. A replay's end is the event's latest word;
    a dispatched run's end counts once all the event's runs are final; a run of an event that
    was never dispatched (a flow called directly) is the event's only run. A crashed run is
    left to the relay, which restarts it. Returns the outcome recorded, or None."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with session_scope(engine) as session:
        event = session.get(OutboxEvent, event_id)
        run_ids = dict(event.flow_run_ids) if event else {}
    if event is None or run.state is None or run.state.is_crashed():
        return None
    if REPLAY_TAG in run.tags or not run_ids:
        outcome = _outcome([run])
    elif str(run.id) in run_ids.values():
        # The event's other runs (per-concern arrangement); bundled, this run is the only one.
        others = [run_id for run_id in run_ids.values() if run_id != str(run.id)]
        found: dict[str, FlowRun] = {}
        if others:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=others))  # type: ignore[arg-type]
            )
            found = {str(r.id): r for r in runs}
        event_runs = [run, *(found.get(run_id) for run_id in others)]
        if not all(_is_final(r) for r in event_runs):
            return None
        outcome = _outcome(event_runs)
    else:
        return None
    outbox.record_finished(engine, {event_id: outcome})
    release_held(engine, client, {event.booking_uid: event.created_at}, because="event ended")
    return outcome


def release_held(
    engine: Engine, client: "SyncPrefectClient", settled: dict[str, datetime], *, because: str
) -> bool:
    """Start a due-work sweep now if a booking where something just settled (`booking uid ->
    commit time of the event or message that settled`) has a later message held back for it,
    rather than leave it for the next scheduled sweep; returns whether one was started. A
    failure to start one is logged: the scheduled sweep sends the message all the same."""
    from prefect.exceptions import ObjectNotFound

    with session_scope(engine) as session:
        held = outbox.with_held_messages(session, settled, utcnow())
    if not held:
        return False
    # Once per thing that settled: `because` tells an event's end from a message's delivery.
    what = (because, sorted((uid, settled[uid]) for uid in held))
    key = hashlib.sha256(repr(what).encode()).hexdigest()
    try:
        start_due_work(client, key=key[:32], booking_uids=held)
    except ObjectNotFound:
        logger.info("no due-work deployment: held messages wait for the next sweep")
        return False
    except Exception as exc:  # the next scheduled sweep is the net
        logger.warning("could not start a due-work sweep for held messages: %s", type(exc).__name__)
        return False
    logger.info("a due-work sweep started for the held messages of booking(s) %s", ", ".join(held))
    return True


def _is_final(run: "FlowRun | None") -> bool:
    return run is None or (run.state is not None and run.state.is_final())


def _needs_restart(run: "FlowRun", now: datetime, settings: Settings) -> bool:
    state = run.state
    if state is None:
        return False
    age = now - state.timestamp
    if state.is_crashed():
        return True
    if state.is_pending():
        return age > PENDING_STALE
    if state.is_running():  # no heartbeat for this long (the automation crashes it sooner)
        return age > timedelta(seconds=settings.run_stale_seconds)
    return False


def _restart(client: "SyncPrefectClient", run: "FlowRun") -> None:
    from prefect.states import AwaitingRetry

    client.set_flow_run_state(
        run.id, AwaitingRetry(message="restarted by the outbox relay"), force=True
    )


def _outcome(runs: list["FlowRun | None"]) -> str:
    """The worst final state of an event's runs: Completed only when all completed."""
    names = [run.state.type.value.title() if run and run.state else "Deleted" for run in runs]
    for worst in ("Crashed", "Deleted", "Failed", "Cancelled"):
        if worst in names:
            return worst
    return COMPLETED

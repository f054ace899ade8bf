"""Start a run as soon as the server schedules it, instead of at the worker's next poll.

The worker follows the Prefect server's event stream for its work pool: each flow run
entering Scheduled (a booking's run, a relay's restart) or AwaitingRetry (a run handed back by
a stopping worker, the UI's Retry) wakes it to look for runs at once. A burst of events wakes
it once per look, not once per event. Polling stays as the safety net, every
`PREFECT_WORKER_QUERY_SECONDS` (10 s by default, `python -m worker`): runs scheduled for later
(the periodic deployments) are fetched up to Prefect's prefetch window ahead of their time,
and a worker whose stream is down still finds every run by its next poll.

A worker at its run limit (`--limit`, `BOOKING_WORKER_RUN_LIMIT`) leaves the runs it has no
place for Scheduled; when it was full at its last look, the next of its runs to end wakes it
to look again, so they start as places free, not at the next poll.
"""

from typing import TYPE_CHECKING

import anyio
from prefect.events.clients import PrefectEventSubscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

if TYPE_CHECKING:
    from worker.draining import DrainingWorker

WAKING_EVENTS = ["prefect.flow-run.Scheduled", "prefect.flow-run.AwaitingRetry"]
# After the stream breaks (its own reconnects used up), how long before following it again.
RESUBSCRIBE_SECONDS = 5.0


def waking_filter(work_pool_id: str) -> EventFilter:
    return EventFilter(
        event=EventNameFilter(name=WAKING_EVENTS),
        related=EventRelatedFilter(id=[f"prefect.work-pool.{work_pool_id}"]),
    )


async def wake_on_scheduled_runs(worker: "DrainingWorker") -> None:
    """Until cancelled: look for runs each time one is scheduled in the worker's pool."""
    while worker._work_pool is None:  # the worker's first sync names its pool
        await anyio.sleep(0.1)
    logger = worker._logger
    wanted = anyio.Event()

    def look_again() -> None:
        wanted.set()

    worker.on_place_freed = look_again

    async def follow() -> None:
        event_filter = waking_filter(str(worker._work_pool.id))
        while True:
            try:
                async with PrefectEventSubscriber(filter=event_filter) as events:
                    logger.info("Starting runs as they are scheduled (event stream followed)")
                    wanted.set()  # anything scheduled while not following
                    async for _event in events:
                        wanted.set()
            except Exception as exc:  # polling still finds every run
                logger.warning(
                    "Event stream lost (%s: %s); runs start at the next poll until it is back",
                    type(exc).__name__,
                    exc,
                )
            await anyio.sleep(RESUBSCRIBE_SECONDS)

    async with anyio.create_task_group() as group:
        group.start_soon(follow)
        while True:
            await wanted.wait()
            wanted = anyio.Event()
            try:
                await worker.get_and_submit_flow_runs()
            except Exception:  # as a poll that fails: the next event or poll tries again
                logger.exception("Could not look for runs to start")

"""Start the deployment runs of committed outbox events, off the booker's critical path.

A `PostCommitDispatcher` owns one background thread running an asyncio loop and one long-lived
Prefect client bound to it, with deployment ids cached after the first lookup. `submit` only
schedules the work on that loop and returns a future at once, so `create_booking` never waits
on the Prefect API. Each run is created with the idempotency key `<event id>:<deployment>`:
a repeat (a retry, the relay, a second process) gets the existing run back, never a new one.
Whatever was not created stays pending in the outbox. The dispatcher tries its own failures
again once the Prefect API answers its health check (looked at every few seconds, at most
`RETRY_MAX_SECONDS` apart), so the events committed during an outage start within about that
of the server's return; the relay's pass every five minutes covers the rest (a dispatcher that
stopped meanwhile, more failures than it remembers).
"""

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL
from sqlalchemy import Engine

from booking import outbox
from booking.db import session_scope
from booking.settings import Settings
from deployments.names import ARRANGEMENTS, DeploymentName
from handoff.runs import create_event_run

logger = logging.getLogger(__name__)

# After a failed dispatch: the first look at the API's health, then each next one twice as
# late, up to the last.
RETRY_FIRST_SECONDS = 2.0
RETRY_MAX_SECONDS = 20.0
# Failed events a dispatcher remembers to try again; beyond them, the relay's.
RETRY_REMEMBERED = 10_000


@dataclass
class DispatchOutcome:
    event_id: str
    booking_uid: str
    runs: dict[str, str] = field(default_factory=dict)  # deployment name -> flow run id
    errors: dict[str, str] = field(default_factory=dict)  # deployment name -> error

    @property
    def dispatched(self) -> bool:
        return not self.errors


class DispatchConfigError(RuntimeError):
    """The dispatcher has no Prefect API to talk to."""


class PostCommitDispatcher:
    """Creates the deployment runs for outbox events, concurrently, in the background."""

    def __init__(self, *, engine: Engine, settings: Settings, max_in_flight: int = 16):
        api_url = settings.prefect_api_url or PREFECT_API_URL.value()
        if not api_url:
            raise DispatchConfigError(
                "no Prefect API configured: set BOOKING_PREFECT_API_URL or PREFECT_API_URL"
            )
        self.dispatch_mode = settings.dispatch_mode
        self._engine = engine
        self.api_url = api_url
        self._timeout = settings.dispatch_timeout_seconds
        self._max_in_flight = max_in_flight
        self._deployment_ids: dict[str, UUID] = {}
        self._client: PrefectClient | None = None
        self._limit: asyncio.Semaphore | None = None
        self._in_flight: set[concurrent.futures.Future[DispatchOutcome]] = set()
        self._to_record: list[tuple[outbox.DispatchRecord, asyncio.Future[None]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._failed: dict[str, None] = {}  # event ids to dispatch again, oldest first
        self._retrier: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="post-commit-dispatch", daemon=True
        )
        self._thread.start()

    # -- called from any thread ------------------------------------------------------------

    def submit(
        self, event_id: str, *, booking_uid: str | None = None, event: str = "CREATED"
    ) -> concurrent.futures.Future[DispatchOutcome]:
        """Queue the dispatch of one committed event and return at once.

        `create_booking` and the transitions pass the booking uid and the kind of an event
        they just wrote with this dispatcher's arrangement; without them (the relay) the
        event is read first.
        """
        future = asyncio.run_coroutine_threadsafe(
            self._dispatch(event_id, booking_uid, event), self._loop
        )
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._finished)
        return future

    def dispatch(self, event_id: str, timeout: float | None = None) -> DispatchOutcome:
        """Dispatch one event and wait for the outcome (the relay and tools use this)."""
        return self.submit(event_id).result(timeout)

    def drain(self, timeout: float | None = None) -> None:
        """Wait for every submitted dispatch to finish."""
        with self._lock:
            pending = list(self._in_flight)
        concurrent.futures.wait(pending, timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Finish in-flight dispatches (up to `timeout`), then stop the loop and the client."""
        if not self._thread.is_alive():
            return
        self.drain(timeout)
        with self._lock:
            unfinished = list(self._in_flight)
        for future in unfinished:  # outside the lock: cancel() runs `_finished` at once
            future.cancel()  # the event stays pending in the outbox: the relay covers it
        asyncio.run_coroutine_threadsafe(self._stop_retrying(), self._loop).result(timeout)
        asyncio.run_coroutine_threadsafe(self._close_client(), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _finished(self, future: concurrent.futures.Future[DispatchOutcome]) -> None:
        with self._lock:
            self._in_flight.discard(future)
        if not future.cancelled() and future.exception() is not None:
            logger.error("dispatch failed before any run was requested: %r", future.exception())

    # -- on the dispatch loop --------------------------------------------------------------

    async def _dispatch(
        self, event_id: str, booking_uid: str | None, event: str
    ) -> DispatchOutcome:
        if booking_uid is None:
            booking_uid, mode, event = await asyncio.to_thread(self._read_event, event_id)
        else:
            mode = self.dispatch_mode
        targets = ARRANGEMENTS[mode]
        outcome = DispatchOutcome(event_id=event_id, booking_uid=booking_uid)
        results = await asyncio.gather(
            *(self._create_run(target, event_id, booking_uid, event) for target in targets),
            return_exceptions=True,
        )
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                outcome.errors[target.name] = _describe(result)
                logger.warning(
                    "could not start %s for booking %s (event %s): %s; started again when the"
                    " API answers, or by the relay",
                    target.full_name,
                    booking_uid,
                    event_id,
                    outcome.errors[target.name],
                )
            else:
                outcome.runs[target.name] = result
        await self._record(
            outbox.DispatchRecord(
                event_id=event_id,
                created=outcome.runs,
                expected=len(targets),
                error="; ".join(f"{k}: {v}" for k, v in outcome.errors.items()) or None,
            )
        )
        self._remember(event_id, failed=bool(outcome.errors))
        if outcome.dispatched:
            logger.info(
                "started %s for booking %s (event %s)",
                ", ".join(f"{name} run {run}" for name, run in outcome.runs.items()),
                booking_uid,
                event_id,
            )
        return outcome

    def _remember(self, event_id: str, *, failed: bool) -> None:
        if not failed:
            self._failed.pop(event_id, None)
            return
        if event_id not in self._failed and len(self._failed) >= RETRY_REMEMBERED:
            return  # pending in the outbox: the relay's
        self._failed[event_id] = None
        if self._retrier is None or self._retrier.done():
            self._retrier = asyncio.create_task(self._retry_when_back())

    async def _retry_when_back(self) -> None:
        """Until every remembered event is dispatched: wait, look at the API's health, and
        once it answers, dispatch them again in the order they failed."""
        delay = RETRY_FIRST_SECONDS
        while self._failed:
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            client = await self._get_client()
            try:
                async with asyncio.timeout(self._timeout):
                    if await client.api_healthcheck() is not None:
                        continue
            except TimeoutError:
                continue
            logger.info("Prefect API answers: starting %d event(s) again", len(self._failed))
            for event_id in list(self._failed):
                try:
                    outcome = await self._dispatch(event_id, None, "CREATED")
                except Exception as exc:  # its record failed: left for the relay
                    logger.warning("could not start event %s again: %s", event_id, exc)
                    self._failed.pop(event_id, None)
                    continue
                if outcome.errors:
                    break  # down again: wait, and look again
            else:
                delay = RETRY_FIRST_SECONDS

    async def _stop_retrying(self) -> None:
        if self._retrier is not None:
            self._retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrier

    async def _record(self, record: outbox.DispatchRecord) -> None:
        """Store what a dispatch created, in the next write of the outbox.

        Writes are grouped: while one transaction runs, the records that arrive wait for
        the next, so a burst of bookings costs few writes (on SQLite, few turns of the one
        writer lock the booking transactions also need).
        """
        written: asyncio.Future[None] = self._loop.create_future()
        self._to_record.append((record, written))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._write_records())
        await written

    async def _write_records(self) -> None:
        while self._to_record:
            batch, self._to_record = self._to_record, []
            try:
                await asyncio.to_thread(
                    outbox.record_dispatches, self._engine, [record for record, _ in batch]
                )
            except Exception as exc:  # each waiting dispatch reports it; the relay retries
                for _, written in batch:
                    written.set_exception(exc)
            else:
                for _, written in batch:
                    written.set_result(None)

    def _read_event(self, event_id: str) -> tuple[str, str, str]:
        with session_scope(self._engine) as session:
            event = outbox.load_event(session, event_id)
            return event.booking_uid, event.dispatch_mode, event.payload.get("event", "CREATED")

    async def _create_run(
        self, target: DeploymentName, event_id: str, booking_uid: str, event: str
    ) -> str:
        client = await self._get_client()
        assert self._limit is not None
        # One deadline over the client's own retries: a stalled API fails fast, the relay
        # picks the event up later.
        async with self._limit, asyncio.timeout(self._timeout):
            for attempt in (1, 2):
                deployment_id = await self._deployment_id(client, target)
                try:
                    run = await create_event_run(
                        client,
                        deployment_id,
                        target,
                        event_id=event_id,
                        booking_uid=booking_uid,
                        event=event,
                    )
                    return str(run.id)
                except ObjectNotFound:
                    # The deployment was re-created since we cached its id: look it up again.
                    self._deployment_ids.pop(target.full_name, None)
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    async def _deployment_id(self, client: PrefectClient, target: DeploymentName) -> UUID:
        cached = self._deployment_ids.get(target.full_name)
        if cached is None:
            deployment = await client.read_deployment_by_name(target.full_name)
            cached = self._deployment_ids[target.full_name] = deployment.id
        return cached

    async def _get_client(self) -> PrefectClient:
        if self._client is None:
            self._limit = asyncio.Semaphore(self._max_in_flight)
            client = PrefectClient(
                self.api_url, httpx_settings={"timeout": httpx.Timeout(self._timeout)}
            )
            await client.__aenter__()
            self._client = client
        return self._client

    async def _close_client(self) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ObjectNotFound):
        return "deployment not found (is it deployed?)"
    if isinstance(exc, TimeoutError):
        return "Prefect API did not answer in time"
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:300]

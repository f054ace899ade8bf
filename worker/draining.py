"""A process worker that stops for a release without losing or repeating a run.

On the first SIGTERM or SIGINT the worker stops taking runs and lets the runs it started
finish, for up to its grace period (`BOOKING_WORKER_STOP_GRACE_SECONDS`, 60 s). A run still
going at the end of it is handed back: its launcher kills the engine and exits cleanly (so
nothing reports the run Crashed), then the run is set AwaitingRetry, as the UI's Retry does,
and the next worker to poll takes it at once, instead of after the crash automation's
silence window. A second signal hands back what is still going at once.

The worker is Prefect's process worker (`ProcessWorker`), run in this process instead of
by `prefect worker start`, so that it can stop polling without stopping its runs.
"""

import contextlib
import os
import signal
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
import prefect.runner._starter_engine as engine_starter
from prefect.client.schemas.objects import FlowRun
from prefect.flows import load_flow_from_flow_run
from prefect.runner._flow_run_executor import FlowRunExecutionResult, FlowRunExecutorContext
from prefect.runner._process_manager import ProcessHandle
from prefect.runner._starter_engine import EngineCommandStarter
from prefect.settings import get_current_settings
from prefect.states import AwaitingRetry
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

from worker.run_env import settings_environment
from worker.wake import wake_on_scheduled_runs

# Sent to a run's launcher (`worker/launch.py`): kill the engine now and exit 0.
HAND_BACK = signal.SIGUSR1
POLL_SECONDS = 0.2
# How long a handed-back run's launcher may take to report its engine gone.
HAND_BACK_WAIT_SECONDS = 10.0
# How long a worker signalled during its start-up lets the start-up finish before stopping.
SETUP_WAIT_SECONDS = 30.0
# How long the worker uses a deployment or flow it read, instead of reading it again.
READ_MEMORY_SECONDS = 10.0


class _NotePid:
    """Stands in for the task status `ProcessWorker.run` reports its process to."""

    def __init__(self, report: Callable[[Any], None], task_status: anyio.abc.TaskStatus[Any]):
        self._report = report
        self._task_status = task_status

    def started(self, value: Any = None) -> None:
        self._report(value)
        self._task_status.started(value)


class JobConfiguration(ProcessJobConfiguration):
    """Prefect's process job configuration, with the worker's Prefect settings turned into
    its runs' environment once (`worker/run_env.py`)."""

    @classmethod
    def _base_environment(cls) -> dict[str, str]:
        return dict(settings_environment())


def remembered(
    read: Callable[[UUID], Awaitable[Any]],
    seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[UUID], Awaitable[Any]]:
    """`read`, answering from what it returned for the same id in the last `seconds`.
    An error is not remembered."""
    memory: dict[UUID, tuple[float, Any]] = {}

    async def read_remembered(object_id: UUID) -> Any:
        now = clock()
        if (kept := memory.get(object_id)) and now - kept[0] < seconds:
            return kept[1]
        value = await read(object_id)
        for old in [key for key, (at, _) in memory.items() if now - at >= seconds]:
            del memory[old]
        memory[object_id] = (now, value)
        return value

    return read_remembered


class _SettingsReadOnce:
    """What Prefect's engine starter asks of the settings for each run it starts: all of them
    as environment variables, serialised anew each time (a third of this worker process's CPU
    in a burst). Its runs' environment holds them already (`JobConfiguration`); this answers
    with the worker's settings serialised once (`worker/run_env.py`)."""

    def to_environment_variables(self, exclude_unset: bool = False) -> dict[str, str]:
        if exclude_unset:
            return dict(settings_environment())
        return get_current_settings().to_environment_variables(exclude_unset=exclude_unset)


class DrainingWorker(ProcessWorker):
    """Prefect's process worker, which can stop taking runs and hand back what it holds."""

    type = "process"
    job_configuration = JobConfiguration

    @classmethod
    def __dispatch_key__(cls) -> str:
        # Prefect registers each worker class by its type; this one is looked up by no one,
        # and must not take "process" from Prefect's own.
        return "booking-draining-process"

    def __init__(self, *args: Any, **kwargs: Any):
        # Named after its host and process unless told otherwise, for the UI's worker list.
        kwargs["name"] = kwargs.get("name") or f"{socket.gethostname()}-{os.getpid()}"
        super().__init__(*args, **kwargs)
        self.draining = False
        self.in_flight: dict[UUID, int | None] = {}  # flow run id -> its launcher's pid
        # Called when a run that ran ends and frees a place under the limit while the last
        # look for runs found the worker full (worker/wake.py): not after every run, which
        # would cost the server a look each, nor for a run the server would not let start.
        self.on_place_freed: Callable[[], None] | None = None
        self._ended: set[UUID] = set()
        self._was_full = False
        self._executor_context: FlowRunExecutorContext | None = None

    async def setup(self) -> None:
        # Entered before Prefect's set-up enters the runs' task group, so it closes after
        # every run has ended. Without it, each run makes its own, as Prefect's worker does.
        try:
            self._executor_context = await self._exit_stack.enter_async_context(
                FlowRunExecutorContext()
            )
        except Exception:
            self._logger.warning(
                "Could not open the executor context runs share; each run opens its own",
                exc_info=True,
            )
        await super().setup()
        # Prefect's worker reads a run's deployment twice and its flow once to submit it
        # (three requests a run); a burst's runs share a few deployments and flows. A
        # deployment changed or deleted is seen within READ_MEMORY_SECONDS.
        client = self._client
        assert client is not None
        client.read_deployment = remembered(client.read_deployment, READ_MEMORY_SECONDS)
        client.read_flow = remembered(client.read_flow, READ_MEMORY_SECONDS)
        engine_starter.get_current_settings = _SettingsReadOnce  # type: ignore[assignment]

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        if self.draining:
            return []
        submitted = await super().get_and_submit_flow_runs()
        self._was_full = self._limiter is not None and self._limiter.available_tokens == 0
        return submitted

    def _release_limit_slot(self, flow_run_id: UUID) -> None:
        super()._release_limit_slot(flow_run_id)
        if flow_run_id not in self._ended:
            return
        self._ended.discard(flow_run_id)
        if self._was_full and self.on_place_freed is not None:
            self._was_full = False
            self.on_place_freed()

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        self.in_flight[flow_run.id] = None

        def note(pid: Any) -> None:
            if isinstance(pid, int):
                self.in_flight[flow_run.id] = pid

        status = _NotePid(note, task_status or anyio.TASK_STATUS_IGNORED)
        try:
            if self._executor_context is None or not configuration._command_configured:
                return await super().run(flow_run, configuration, status)  # type: ignore[arg-type]
            return await self._run_in_shared_context(flow_run, configuration, status)
        finally:
            self.in_flight.pop(flow_run.id, None)
            self._ended.add(flow_run.id)

    async def _run_in_shared_context(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[Any],
    ) -> ProcessWorkerResult:
        """`ProcessWorker.run` for a pool with a command (ours: `python -m worker.launch`),
        in the worker's one executor context instead of a new one per run. Prefect's makes,
        for each run, a client, a listener for the run's control channel, an event stream
        to the server and a subscription to its cancellations (two WebSocket sessions and a
        query of past events on the server); Prefect's own runner keeps one for all its
        runs, as this does."""
        ctx = self._executor_context
        assert ctx is not None
        working_dir_ctx = (
            tempfile.TemporaryDirectory(suffix="prefect")
            if not configuration.working_dir
            else contextlib.nullcontext(configuration.working_dir)
        )
        execution: FlowRunExecutionResult | None = None
        with working_dir_ctx as working_dir, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            starter = EngineCommandStarter(
                command=configuration.command,
                cwd=Path(working_dir).resolve(),
                env=configuration.env,
                stream_output=configuration.stream_output,
                control_channel=ctx.control_channel,
            )
            executor = ctx.create_executor(
                flow_run, starter, resolve_flow=load_flow_from_flow_run, propose_submitting=False
            )

            async def execute(
                *, task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED
            ) -> None:
                nonlocal execution
                execution = await executor.submit(task_status=task_status)

            async with anyio.create_task_group() as group:
                handle = await group.start(execute)
                if handle.pid is None:
                    raise RuntimeError("Flow run process has no PID")
                task_status.started(handle.pid)
        if execution is None or execution.status_code is None:
            raise RuntimeError("Failed to start flow run process.")
        return ProcessWorkerResult(
            status_code=execution.status_code, identifier=str(execution.handle.pid)
        )

    def holding(self) -> set[UUID]:
        """The runs this worker took and has not seen end: being submitted, or running."""
        return set(self._submitting_flow_run_ids) | set(self.in_flight)

    async def drain(self, grace: float, hurry: anyio.Event) -> None:
        """Take no more runs; wait up to `grace` seconds (or until `hurry`) for the runs
        in flight to end, then hand back the rest."""
        self.draining = True
        held = self.holding()
        self._logger.info(
            "Stopping: taking no new runs; waiting up to %g s for %d run(s) in flight"
            " (a second signal hands them back at once)",
            grace,
            len(held),
        )
        with anyio.move_on_after(grace):
            while self.holding() and not hurry.is_set():
                await anyio.sleep(POLL_SECONDS)
        left = self.holding()
        if not left:
            self._logger.info("Stopped: every run it held has ended")
            return
        await self.hand_back(left)

    async def hand_back(self, runs: set[UUID]) -> None:
        self._logger.warning(
            "Handing back %d run(s) still going: each is stopped and set AwaitingRetry"
            " for another worker to run from the start",
            len(runs),
        )
        for run_id in runs:
            pid = self.in_flight.get(run_id)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, HAND_BACK)
        # Only once its engine is gone can a run be given to another worker: until then it
        # could still report a state of its own.
        with anyio.move_on_after(HAND_BACK_WAIT_SECONDS):
            while runs & set(self.in_flight):
                await anyio.sleep(POLL_SECONDS)
        for run_id in runs:
            await self._reschedule(run_id)

    async def _reschedule(self, run_id: UUID) -> None:
        try:
            run = await self.client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final() and not run.state.is_crashed():
                return  # it finished as it was being stopped
            await self.client.set_flow_run_state(
                run_id,
                AwaitingRetry(message=f"handed back by worker {self.name!r}, which stopped"),
                force=True,
            )
        except Exception:
            self._logger.exception(
                "Could not hand back flow run %s; the crash automation will restart it", run_id
            )
        else:
            self._logger.info("Handed back flow run %s (%s)", run_id, run.name)


async def serve(
    worker: DrainingWorker, grace: float, stop_asked: threading.Event | None = None
) -> None:
    """Run `worker` until a SIGTERM or SIGINT, then drain it (a second signal hurries).
    `stop_asked` is set by a signal that came before this could receive one."""
    stop = anyio.Event()
    hurry = anyio.Event()

    async def watch_signals() -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            if stop_asked is not None and stop_asked.is_set():
                stop.set()
            async for _ in signals:
                (hurry if stop.is_set() else stop).set()

    async def work() -> None:
        await worker.start(printer=print)
        stop.set()  # the worker ended by itself: nothing to wait for

    async with anyio.create_task_group() as group:
        group.start_soon(watch_signals)
        group.start_soon(work)
        group.start_soon(wake_on_scheduled_runs, worker)
        await stop.wait()
        if not worker.is_setup:
            # Signalled while starting up: Prefect's set-up does not survive being cancelled
            # midway (its worker channel's handshake then raises from its cancel scope, and
            # the worker exited 1 with a traceback), so let it finish first; a second signal,
            # or SETUP_WAIT_SECONDS, cuts the wait short.
            with anyio.move_on_after(SETUP_WAIT_SECONDS):
                while not worker.is_setup and not hurry.is_set():
                    await anyio.sleep(POLL_SECONDS)
        if worker.is_setup:
            await worker.drain(grace, hurry)
        group.cancel_scope.cancel()

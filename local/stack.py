"""Run a real Prefect server, work pool, deployments and worker on this machine.

Used by the main job and by the integration tests, so both exercise the same path an operator
takes: `prefect server start`, `prefect work-pool create`, `prefect deploy --all` from the
repo root, `prefect worker start`.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

from booking.settings import PROJECT_ROOT
from deployments.names import WORK_POOL, DeploymentName


class LocalStackError(RuntimeError):
    """A local Prefect component could not be started; the message says what to do."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# Tries at starting the server when the port it was given is taken before it binds.
PORT_ATTEMPTS = 3


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# The server's settings, as the README's Deploying section starts it (a test holds the two
# together; docs/performance.md measures what each saves):
SERVER_SETTINGS = {
    # Prefect's pool of 5 overflowed in a burst, and each connection it opened and closed
    # cost PostgreSQL a new backend.
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "20",
    # Loops that ran every 5 s for nothing here: no run is ever paused; a run is marked Late
    # within 15 s instead of 5; a deployment's new schedule is picked up within 30 s.
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "15",
    "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "30",
    # Task runs are stored from their state events. Prefect wrote each event in a transaction
    # of its own (a tenth of the server's CPU in a burst); here up to 50 at once, at least
    # every second: a task run's state reaches the UI within a second.
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "50",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


@dataclass
class LocalPrefect:
    """A Prefect server (SQLite in `home` unless `database_url` is given) and its helpers."""

    home: Path
    port: int
    host: str = "127.0.0.1"
    database_url: str | None = None  # e.g. postgresql+asyncpg://... for concurrent load
    ui: bool = False
    # Prefect's documented scale-out: API workers and the background services in their own
    # process (the environment must point messaging at Redis; see bench/pipeline.py).
    api_workers: int = 1
    separate_services: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)
    _server_processes: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def server_pids(self) -> list[int]:
        """The server's processes: the API (first started) and, scaled out, the services."""
        return [p.pid for p in self._server_processes]

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment every Prefect command and flow run of this stack sees."""
        env = dict(os.environ)
        # Flow runs start as `python -m worker.launch` (prefect.yaml): this interpreter.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            # The UI reads these to call the API on the right address.
            PREFECT_SERVER_API_HOST=self.host,
            PREFECT_SERVER_API_PORT=str(self.port),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_ENABLED="true" if self.ui else "false",
            PREFECT_LOGGING_LEVEL=env.get("PREFECT_LOGGING_LEVEL", "INFO"),
        )
        for name, value in SERVER_SETTINGS.items():
            env.setdefault(name, value)
        if self.database_url:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.database_url
        if self.api_workers > 1:
            # Migrated and block types registered once before the API workers start (see
            # `start`): each would otherwise do both at the same moment, and race.
            env["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] = "false"
            env["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] = "false"
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 90.0) -> None:
        if not port_is_free(self.host, self.port):
            raise LocalStackError(
                f"port {self.port} on {self.host} is already in use: stop what listens there "
                "or choose another port"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        options = []
        if self.api_workers > 1:
            # Several API workers would race to migrate a new database and to register
            # Prefect's block types in it: do both once, first.
            self.run("server", "database", "upgrade", "--yes")
            self._register_block_types()
            options += ["--workers", str(self.api_workers)]
        if self.separate_services:
            options.append("--no-services")
        for attempt in range(PORT_ATTEMPTS):
            if self._start_api(options, timeout):
                return
            # Another process took the free port between its check and the server's bind.
            if attempt + 1 < PORT_ATTEMPTS:
                self.port = free_port(self.host)
        raise LocalStackError(
            f"Prefect server could not bind a port; see {self.log_path('server')}"
        )

    def _start_api(self, options: list[str], timeout: float) -> bool:
        """Start the API and wait until it is healthy: True, or False if its port was taken."""
        log = self.log_path("server")
        seen = log.stat().st_size if log.exists() else 0
        api = self._spawn(
            "server",
            "prefect",
            "server",
            "start",
            "--host",
            self.host,
            "--port",
            str(self.port),
            *options,
        )
        self._server_processes.append(api)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if api.poll() is not None:
                with log.open("rb") as output:
                    output.seek(seen)
                    if b"already in use" in output.read():  # Prefect's check, or the bind
                        self._server_processes.remove(api)
                        self._processes.remove(api)
                        return False
                raise LocalStackError(
                    f"Prefect server exited with {api.returncode}; see {self.log_path('server')}"
                )
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    if self.separate_services:
                        self._server_processes.append(
                            self._spawn("services", "prefect", "server", "services", "start")
                        )
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise LocalStackError(f"Prefect server not healthy after {timeout:.0f}s")

    def _register_block_types(self) -> None:
        """What each API worker does on start unless told not to, done once."""
        script = (
            "import asyncio\n"
            "from prefect.server.database import provide_database_interface\n"
            "from prefect.server.models.block_registration import run_block_auto_registration\n"
            "async def main():\n"
            "    db = provide_database_interface()\n"
            "    async with await db.session() as session:\n"
            "        await run_block_auto_registration(session=session)\n"
            "asyncio.run(main())\n"
        )
        self._command([sys.executable, "-c", script], PROJECT_ROOT, "register block types")

    def deploy_all(self, project_dir: Path = PROJECT_ROOT) -> None:
        """Create the process work pool, every deployment in prefect.yaml and the
        automations."""
        from prefect.client.orchestration import SyncPrefectClient

        from booking.settings import Settings
        from deployments.automations import ensure_automations

        self.create_pool(WORK_POOL)
        self.run("--no-prompt", "deploy", "--all", cwd=project_dir)
        # The automations' window is the one this stack's workers and relay are told.
        silence = self.env().get("BOOKING_RUN_SILENCE_SECONDS") or (
            Settings.model_fields["run_silence_seconds"].default
        )
        with SyncPrefectClient(self.api_url) as client:
            ensure_automations(client, timedelta(seconds=int(silence)))

    def pause_deployments(self, targets: Iterable[DeploymentName], paused: bool = True) -> None:
        """Pause (or resume) deployments' schedules; pausing deletes their runs already
        scheduled. Runs created on demand for a paused deployment still run."""
        from prefect.client.orchestration import SyncPrefectClient

        with SyncPrefectClient(self.api_url) as client:
            for target in targets:
                deployment = client.read_deployment_by_name(target.full_name).id
                if paused:
                    client.pause_deployment(deployment)
                else:
                    client.resume_deployment(deployment)

    def create_pool(self, name: str) -> None:
        """A process work pool (created, or reset), as `prefect work-pool create NAME --type
        process --overwrite` makes it: with the process worker's job template."""
        from prefect.client.orchestration import SyncPrefectClient
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.workers.process import ProcessWorker

        pool = WorkPoolCreate(
            name=name,
            type="process",
            base_job_template=ProcessWorker.get_default_base_job_template(),
        )
        with SyncPrefectClient(self.api_url) as client:
            client.create_work_pool(pool, overwrite=True)

    def start_worker(
        self,
        *extra_args: str,
        name: str = "worker",
        pool: str = WORK_POOL,
        forkserver: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """A worker on the pool, as the README starts one: `python -m worker`
        (with its forkserver), or plain `prefect worker start`, with `env` on top of the
        stack's environment. Output goes to `log_path(name)`."""
        if forkserver:
            return self._spawn(name, "worker", "--pool", pool, *extra_args, env=env)
        command = ("prefect", "worker", "start", "--pool", pool, *extra_args)
        return self._spawn(name, *command, env=env)

    def stop_process(self, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        """Stop one process this stack started (a worker and what it started), as Ctrl-C
        would."""
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self._processes.remove(process)

    def run(self, *args: str, cwd: Path | None = None) -> str:
        """Run one `prefect` CLI command against this server; raise with its output on failure."""
        command = [sys.executable, "-m", "prefect", *args]
        return self._command(command, cwd or PROJECT_ROOT, "prefect " + " ".join(args))

    def _command(self, command: list[str], cwd: Path, label: str) -> str:
        result = subprocess.run(
            command, env=self.env(), cwd=cwd, capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            raise LocalStackError(
                f"`{label}` failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
        return result.stdout

    def python(self, *args: str) -> str:
        """Run this interpreter (e.g. `-m deployments.automations`) against this server."""
        return self._command([sys.executable, *args], PROJECT_ROOT, " ".join(args))

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def _spawn(
        self, name: str, module: str, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = self.log_path(name).open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**self.env(), **(env or {})},
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._processes.append(process)
        return process

    def stop(self, timeout: float = 20.0) -> None:
        """Signal workers and server together, then wait for all (killing stragglers)."""
        running = [p for p in reversed(self._processes) if p.poll() is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        self._processes.clear()
        self._server_processes.clear()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Each process starts its own session: signal it and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def scale_out_env(redis_url: str) -> dict[str, str]:
    """Prefect's documented scale-out: events, ordering, leases and docket in Redis."""
    host, port, db = redis_parts(redis_url)
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": host,
        "PREFECT_REDIS_MESSAGING_PORT": str(port),
        "PREFECT_REDIS_MESSAGING_DB": str(db),
        "PREFECT_SERVER_DOCKET_URL": f"redis://{host}:{port}/{db + 1}",
    }


def redis_parts(url: str) -> tuple[str, int, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379, int(parts.path.strip("/") or 0)


def flush_redis(url: str, databases: int = 2) -> None:
    """Empty the Redis databases a bench stack uses, so no earlier run's streams remain."""
    import redis

    host, port, db = redis_parts(url)
    for n in range(db, db + databases):
        redis.Redis(host=host, port=port, db=n).flushdb()

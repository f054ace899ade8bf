"""A warm parent that forks flow-run engines, so a run does not pay for a new interpreter.

    python -m worker.forkserver --socket PATH --parent WORKER_PID

A process worker starts a new Python per flow run, and importing Prefect and the flows costs
seconds of CPU each time. This process imports them once and then waits on a Unix socket.
`worker/launch.py`, which the worker runs in place of `python -m prefect.engine`, sends
it the run's working directory, environment and standard streams; the forkserver forks, and
the child becomes the engine for that run (`python -m prefect.engine`, run in place), writing
to the worker's own pipes. The pattern is gunicorn's preload and Python's forkserver.

Rules it keeps:
- no threads or event loops before a fork: it is one thread with a selector, and refuses to
  fork (the launcher then starts the engine plainly) if an import started a thread;
- it runs in a process group of its own, and so do its children: a signal meant for the
  worker (Ctrl-C, a service manager's SIGTERM to its group) reaches neither, and the worker
  decides what its runs get (`worker/draining.py`). Cancellation (SIGTERM to the launcher)
  is forwarded, and a child whose launcher dies is killed, so a run is never left without
  someone to report its end;
- a fresh parent when the deployed code changes: a request finds the code changed since
  start-up, is answered "start plainly", and the forkserver execs itself anew as soon as its
  running children are done. Settings need no such care: each child reads its run's
  environment, and steps take their retry policy when the run starts;
- it exits when the worker that started it is gone (`python -m worker`), however it went:
  on Linux the kernel tells it at once (a parent-death signal, which a SIGKILLed worker
  sends too), elsewhere it sees it within a second; a worker gone before the forkserver
  finished its imports is seen too.
"""

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from booking.settings import PROJECT_ROOT

PR_SET_PDEATHSIG = 1  # prctl(2)
CODE_DIRS = ("booking", "deployments", "flows", "handoff", "tasks")
# Modules a flow run needs; importing them here is the point of the forkserver.
PRELOAD = (
    "flows.deliver_due_work",
    "flows.integrations",
    "flows.outbox_relay",
    "flows.post_commit",
    "flows.recover_deliveries",
    "flows.replay_message",
    "flows.retention",
    "flows.scheduling",
    "flows.webhooks",
    "babel.dates",
    "pystache",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.deployments.steps",
    "prefect._internal.metrics",
    "prefect.logging.handlers",
    "prefect.events.clients",
    "prefect.utilities.visualization",
    "anyio._backends._asyncio",
    "encodings.idna",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite.pysqlite",
    # Imported by a run's end hook (the relay's bookkeeping) and by rich's log rendering.
    "handoff.relay",
    "rich._emoji_codes",
)
STOP_GRACE_SECONDS = 30
# How often the forkserver reads again what runs' events name (prime_related_objects).
RELATED_REFRESH_SECONDS = 300
REFRESH_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Request:
    """What a launcher hands over: where and how its flow run's engine must run."""

    cwd: str
    env: dict[str, str]
    argv: list[str]
    fds: list[int]


def code_fingerprint(root: Path = PROJECT_ROOT) -> str:
    """Changes when any project module or prefect.yaml is edited, added or removed."""
    digest = hashlib.sha256()
    files = [root / "prefect.yaml", *(p for d in CODE_DIRS for p in (root / d).rglob("*.py"))]
    for path in sorted(files):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        digest.update(f"{path.relative_to(root)}:{stat.st_mtime_ns}:{stat.st_size};".encode())
    return digest.hexdigest()


def prefect_settings_env(env: dict[str, str]) -> dict[str, str]:
    """The variables Prefect's settings are read from (`PREFECT__...` are a run's own, not
    settings). The worker starts this process with the environment it gives its runs, so a
    run whose settings are this process's reads none of them again (6 % of a run's CPU)."""
    return {k: v for k, v in env.items() if k.startswith("PREFECT_") and k[8:9] != "_"}


def logging_settings(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith("PREFECT_LOGGING_")}


class Forkserver:
    def __init__(self, path: str, parent: int):
        self.path = path
        self.fingerprint = code_fingerprint()
        self.parent = parent
        self.children: dict[int, socket.socket] = {}  # child pid -> its launcher's connection
        self.restart = False
        self.stopping = False
        self.stop_deadline: float | None = None
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.primed_at = time.monotonic()

    def serve(self) -> Request | None:
        """Answer launchers until told to stop. Returns a Request only in a forked child;
        returns None in the parent when it should exit."""
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._listener.bind(self.path)
        self._listener.listen(64)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        _say(f"ready on {self.path} (pid {os.getpid()})")
        while True:
            for key, _ in self._selector.select(timeout=1.0):
                if key.data == "accept" and not (self.stopping or self.restart):
                    request = self._accept()
                    if request is not None:
                        return request  # in the child
                elif key.data == "wake":
                    os.read(self._wake_r, 512)
                elif key.data == "launcher":
                    self._launcher_gone(key.fileobj)  # type: ignore[arg-type]
            self._reap()
            if not self.children and time.monotonic() - self.primed_at > RELATED_REFRESH_SECONDS:
                self.primed_at = time.monotonic()  # read again between runs, not during one
                prime_related_objects(timeout=REFRESH_TIMEOUT_SECONDS)
            if os.getppid() != self.parent:
                self.stopping = True  # the worker that started us is gone
            if (self.stopping or self.restart) and self._listener.fileno() >= 0:
                self._close_listener()
            self._terminate_children_if_stopping()
            if (self.stopping or self.restart) and not self.children:
                return None

    # -- requests ------------------------------------------------------------------------

    def _accept(self) -> Request | None:
        conn, _ = self._listener.accept()
        try:
            conn.settimeout(5)
            request = _receive(conn)
            reason = self._why_not(request)
        except (OSError, ValueError) as exc:
            conn.close()
            _say(f"could not read a launch request: {exc}")
            return None
        if reason:
            _send(conn, {"fallback": reason})
            conn.close()
            for fd in request.fds:
                os.close(fd)
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._become_child(conn)
            return request
        for fd in request.fds:
            os.close(fd)
        conn.settimeout(None)
        _send(conn, {"pid": pid})
        self.children[pid] = conn
        self._selector.register(conn, selectors.EVENT_READ, "launcher")
        return None

    def _why_not(self, request: Request) -> str | None:
        if code_fingerprint() != self.fingerprint:
            self.restart = True
            return "the project's code changed since the forkserver started; it restarts"
        if threading.active_count() != 1:
            return "the forkserver has threads running; forking now would not be safe"
        return None

    def _become_child(self, conn: socket.socket) -> None:
        """In the child: drop everything of the server."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self._selector.close()
        for other in (self._listener, conn, *self.children.values()):
            other.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- children ------------------------------------------------------------------------

    def _launcher_gone(self, conn: socket.socket) -> None:
        """A launcher's connection closed before its child ended: the worker lost interest
        (it killed the launcher); the child must not run on unobserved."""
        self._selector.unregister(conn)
        for pid, owner in self.children.items():
            if owner is conn:
                _kill(pid, signal.SIGKILL)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                outcome = {"signal": os.WTERMSIG(status)}
            else:
                outcome = {"exit": os.waitstatus_to_exitcode(status)}
            with contextlib.suppress(KeyError):
                self._selector.unregister(conn)
            with contextlib.suppress(OSError):
                _send(conn, outcome)
            conn.close()

    def _terminate_children_if_stopping(self) -> None:
        """On stop: SIGTERM every running engine, then SIGKILL what is left after the grace."""
        if not self.stopping:
            return
        if self.stop_deadline is None:
            self.stop_deadline = time.monotonic() + STOP_GRACE_SECONDS
            for pid in self.children:
                _kill(pid, signal.SIGTERM)
        elif time.monotonic() > self.stop_deadline:
            for pid in self.children:
                _kill(pid, signal.SIGKILL)

    def _close_listener(self) -> None:
        self._selector.unregister(self._listener)
        self._listener.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum != signal.SIGCHLD:
            self.stopping = True


def _receive(conn: socket.socket) -> Request:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 20)
        if not more:
            raise ValueError("launch request cut short")
        data += more
    message = json.loads(data)
    if len(fds) != 3:
        raise ValueError(f"expected 3 standard streams, got {len(fds)}")
    return Request(cwd=message["cwd"], env=message["env"], argv=message["argv"], fds=fds)


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _say(message: str) -> None:
    sys.stderr.write(f"forkserver: {message}\n")
    sys.stderr.flush()


def run_engine(request: Request) -> None:
    """In the child: take over the launcher's streams, directory and environment, then run
    `python -m prefect.engine` in place. Its exit ends this process as it would end that one."""
    inherited = dict(os.environ)
    for target, fd in enumerate(request.fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    sys.argv = ["prefect.engine", *request.argv]

    import runpy

    from prefect.context import refresh_global_settings_context
    from prefect.logging.configuration import setup_logging

    from booking.settings import get_settings

    if prefect_settings_env(request.env) != prefect_settings_env(inherited):
        refresh_global_settings_context()  # Prefect's settings from this run's environment
    if logging_settings(request.env) != logging_settings(inherited):
        setup_logging(incremental=False)
    get_settings.cache_clear()
    # The engine runs as `__main__`, as `python -m prefect.engine` would; a preloaded copy
    # of the module would only make runpy warn.
    sys.modules.pop("prefect.engine", None)
    runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)


def _load_locale_data() -> None:
    """Babel reads a language's data on its first use in a process (about 20 ms for
    English): read every language the messages are written in once, here."""
    from datetime import UTC, datetime

    from booking.i18n import CATALOGUE, local_time

    for language in CATALOGUE:
        local_time(datetime.now(UTC), "UTC", language)


def _make_tls_context() -> None:
    """The TLS context of calls to subscribers and providers is made once per process
    (tasks/clients.py); loading its certificates takes about 40 ms of CPU: made here, each
    forked run has it already."""
    from tasks.clients import tls_context

    tls_context()


def _check_api_version() -> None:
    """Prefect's clients check the server's API version once per process (two requests in
    each run, `GET /admin/version`): checked here, each forked run knows it already. A server
    not reachable now is no reason to stop: each run then checks for itself, as before.

    Prefect's event clients key the check by the API URL as configured and its HTTP clients
    by the URL with a trailing slash, so the one check is noted for both."""
    import prefect
    from prefect._internal.version_checking import (
        _api_version_check_key,
        _cache_api_version_check,
    )
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    api_url = get_current_settings().api.url
    if not api_url:
        return
    with contextlib.suppress(Exception), get_client(sync_client=True) as client:
        client.raise_for_api_version_mismatch_once()
        _cache_api_version_check(_api_version_check_key(api_url, prefect.__version__))


def prime_related_objects(timeout: float | None = None) -> None:
    """Read what a run's events name besides the run: its flow, deployment, work queue and
    work pool. Prefect reads each once per process into `prefect.events.related`'s cache,
    which for a forked run is four requests a run; read here, each forked run has them.
    Read again every `RELATED_REFRESH_SECONDS` (a deployment's tags are part of its runs'
    events); a deployment missing now is read by its runs themselves, as before. With
    `timeout`, each request gets that long and no retry, and the first failure ends the
    reading: launchers wait while this runs."""
    from prefect.client.orchestration import get_client
    from prefect.events.related import RESOURCE_CACHE
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, get_current_settings
    from prefect.settings.context import temporary_settings
    from prefect.types._datetime import now

    from deployments.names import ALL

    if not get_current_settings().api.url:
        return
    read: dict[str, object] = {}
    bounded = temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}) if timeout else None
    with (
        contextlib.suppress(Exception),
        bounded or contextlib.nullcontext(),
        get_client({"timeout": timeout} if timeout else None, sync_client=True) as client,
    ):
        for name in ALL:
            try:
                deployment = client.read_deployment_by_name(name.full_name)
            except ObjectNotFound:  # not deployed (yet): its runs read it themselves
                continue
            read[f"deployment.{deployment.id}"] = deployment
            if f"flow.{deployment.flow_id}" not in read:
                read[f"flow.{deployment.flow_id}"] = client.read_flow(deployment.flow_id)
            if deployment.work_queue_id and f"work-queue.{deployment.work_queue_id}" not in read:
                read[f"work-queue.{deployment.work_queue_id}"] = client.read_work_queue(
                    deployment.work_queue_id
                )
            pool = deployment.work_pool_name
            if pool and f"work-pool.{pool}" not in read:
                read[f"work-pool.{pool}"] = client.read_work_pool(pool)
    stamp = now("UTC")
    for key, obj in read.items():
        RESOURCE_CACHE[key] = ({"kind": key.split(".", 1)[0], "object": obj}, stamp)


def _complete_models() -> None:
    """What each run would otherwise build on first use: SQLAlchemy's mapper configuration
    (3 % of a run's CPU) and the validators of Prefect's API models that pydantic defers (a
    flow run's, a deployment's, a work pool's: 4 %)."""
    from pydantic import BaseModel
    from sqlalchemy.orm import configure_mappers

    import booking.models  # noqa: F401 (every mapped class, to configure them all)

    configure_mappers()
    classes, seen = [BaseModel], set()
    while classes:
        cls = classes.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                classes.append(sub)
                if not sub.__pydantic_complete__ and sub.__module__.startswith("prefect."):
                    with contextlib.suppress(Exception):
                        sub.model_rebuild()


def preload() -> None:
    """Import what flow runs need, then freeze the heap: objects that exist now are never
    scanned by a child's garbage collector, and their memory pages stay shared."""
    import gc
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    _load_locale_data()
    _make_tls_context()
    _check_api_version()
    prime_related_objects()
    _complete_models()
    gc.collect()
    gc.freeze()


def _exit_with(parent: int) -> None:
    """Be sent SIGTERM when the worker dies (Linux's parent-death signal; it is reset in a
    forked child), and exit now if it is gone already."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit(f"forkserver: worker {parent} is gone; not starting")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument(
        "--parent", type=int, default=None, help="pid of the worker (default: the parent)"
    )
    args = parser.parse_args()
    parent = args.parent or os.getppid()
    _exit_with(parent)  # before the imports: a worker may die while they run
    preload()
    server = Forkserver(args.socket, parent)
    request = server.serve()
    if request is not None:
        run_engine(request)  # the child: ends by the engine's own exit
        return
    if server.restart and not server.stopping:
        _say("code changed: restarting with fresh imports")
        os.execv(sys.executable, [sys.executable, "-m", "worker.forkserver", *sys.argv[1:]])
    _say("stopped")


if __name__ == "__main__":
    main()

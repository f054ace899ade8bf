"""Start a Prefect worker with a warm forkserver beside it: the one command per worker host.

    python -m worker [--pool booking-pool] [--name NAME] [--limit N] [--work-queue Q]...
                     [--grace SECONDS]

Starts `python -m worker.forkserver` (Prefect and the flows imported once), then runs
Prefect's process worker on the pool in this process, with the forkserver's socket in its
environment. The work pool's `command` (`python -m worker.launch`) then forks each flow run
from the forkserver instead of starting a new interpreter, and falls back to a plain start
when it is not running. The forkserver stops when this worker stops.

Stopping it for a release: send SIGTERM (or press Ctrl-C) once. It takes no new runs and
lets its runs finish for up to `--grace` seconds (`BOOKING_WORKER_STOP_GRACE_SECONDS`, 60);
a run still going then is handed back for another worker to take at once. A second signal
hands back at once (`worker/draining.py`).
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from deployments.names import WORK_POOL

READY_TIMEOUT_SECONDS = 60
# Runs send a heartbeat this often; the "crash silent runs" automation (deployments/
# automations.py) marks a run Crashed after 90 s without one. Prefect's default is 180 s.
HEARTBEAT_SECONDS = "30"
# How often the worker asks for runs to start (Prefect's default, 10 s). A run is started
# as soon as the server schedules it (`worker/wake.py`); the poll is the safety net, and
# fetches runs scheduled for later ahead of their time.
POLL_SECONDS = "10"
# What this worker's runs ask of the Prefect server, set unless the environment says
# otherwise (docs/performance.md counts the requests a run makes, by route):
RUN_DEFAULTS = {
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": HEARTBEAT_SECONDS,
    # Routine INFO lines go to this worker's own log (the runs' output); warnings and errors
    # still go to the API, so the UI shows why a step failed. About 20 lines a booking fewer
    # for the server to store.
    "PREFECT_LOGGING_HANDLERS_API_LEVEL": "WARNING",
    # Prefect's server has CSRF protection off unless configured; with it off, each client
    # still asked for a token first (4 requests a booking).
    "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "false",
}


# A stop asked for before the worker can drain (while Prefect and the flows import, or the
# forkserver starts): noted, then honoured as soon as it can be. Python's default for SIGTERM
# killed the worker on the spot (exit -15), seen in a rolling restart on a loaded machine.
STOP_ASKED = threading.Event()


def _note_stop(_signum: int, _frame: object) -> None:
    STOP_ASKED.set()


def main() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _note_stop)
    # Imported after the handlers are in place: importing Prefect takes seconds.
    from prefect.context import refresh_global_settings_context

    from booking.settings import get_settings
    from worker.api_tls import plain_http_cert_file
    from worker.launch import SOCKET_ENV
    from worker.run_env import settings_environment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default=WORK_POOL, help=f"work pool (default {WORK_POOL})")
    parser.add_argument("--name", help="worker name (default: a new one each start)")
    parser.add_argument(
        "--limit",
        type=int,
        help="most flow runs at once, 0 for no limit (default: BOOKING_WORKER_RUN_LIMIT, 16)",
    )
    parser.add_argument(
        "--work-queue", action="append", dest="work_queues", help="poll only this queue"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=None,
        help="on SIGTERM, seconds to let runs in flight finish before handing them back"
        " (default: BOOKING_WORKER_STOP_GRACE_SECONDS, 60)",
    )
    args = parser.parse_args()
    settings = get_settings()
    grace = args.grace if args.grace is not None else settings.worker_stop_grace_seconds
    limit = args.limit if args.limit is not None else settings.worker_run_limit
    socket_path = Path(tempfile.gettempdir()) / f"booking-forkserver-{os.getpid()}.sock"
    # Runs inherit this process's environment.
    os.environ[SOCKET_ENV] = str(socket_path)
    for name, value in (*RUN_DEFAULTS.items(), ("PREFECT_WORKER_QUERY_SECONDS", POLL_SECONDS)):
        os.environ.setdefault(name, value)
    if cert_file := plain_http_cert_file():
        os.environ["PREFECT_API_SSL_CERT_FILE"] = str(cert_file)
    # This process's own clients (two a run: the run's executor and its cancellation
    # watcher) read Prefect's settings as they were at import: read them again.
    refresh_global_settings_context()
    # The forkserver's parent is this worker: when it exits, the forkserver notices and
    # stops. Its own process group keeps a signal meant for the worker away from the runs.
    # The forkserver reads Prefect's settings from the environment the worker gives each run,
    # so a forked run has its settings already (worker/forkserver.py: `run_engine`).
    forkserver = subprocess.Popen(
        [
            *(sys.executable, "-m", "worker.forkserver"),
            *("--socket", str(socket_path), "--parent", str(os.getpid())),
        ],
        env={**os.environ, **settings_environment()},
        process_group=0,
    )
    # Let it finish its imports first, so the first runs are forked too (a run that finds no
    # forkserver still starts, plainly).
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not socket_path.exists() and forkserver.poll() is None and not STOP_ASKED.is_set():
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if STOP_ASKED.is_set():
        # Nothing taken yet: nothing to drain. The forkserver stops when this process exits.
        sys.stderr.write("worker: stopped before taking any run\n")
        return

    import anyio

    from worker.draining import DrainingWorker, serve

    worker = DrainingWorker(
        work_pool_name=args.pool,
        work_queues=args.work_queues,
        name=args.name,
        limit=limit or None,
    )
    anyio.run(serve, worker, grace, STOP_ASKED)


if __name__ == "__main__":
    main()

"""Start a Prefect worker with a warm forkserver beside it: the one command per worker host.

    python -m worker [--pool booking-pool] [any `prefect worker start` option]

Starts `python -m worker.forkserver` (Prefect and the flows imported once), then becomes
`prefect worker start --pool ...` itself, with the forkserver's socket in its environment.
The work pool's `command` (`python -m worker.launch`) then forks each flow run from the
forkserver instead of starting a new interpreter, and falls back to a plain start when it is
not running. The forkserver stops when this worker stops.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deployments.names import WORK_POOL
from worker.launch import SOCKET_ENV

READY_TIMEOUT_SECONDS = 60
# Runs send a heartbeat this often; the "crash silent runs" automation (deployments/
# automations.py) marks a run Crashed after 90 s without one. Prefect's default is 180 s.
HEARTBEAT_SECONDS = "30"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default=WORK_POOL, help=f"work pool (default {WORK_POOL})")
    args, worker_options = parser.parse_known_args()
    socket_path = Path(tempfile.gettempdir()) / f"booking-forkserver-{os.getpid()}.sock"
    env = {**os.environ, SOCKET_ENV: str(socket_path)}
    env.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", HEARTBEAT_SECONDS)
    # The forkserver's parent is this process, which becomes the worker: when the worker
    # exits, the forkserver notices its new parent and stops.
    forkserver = subprocess.Popen(
        [sys.executable, "-m", "worker.forkserver", "--socket", str(socket_path)], env=env
    )
    # Let it finish its imports first, so the first runs are forked too (a run that finds no
    # forkserver still starts, plainly).
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not socket_path.exists() and forkserver.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", args.pool]
    os.execve(sys.executable, [*command, *worker_options], env)


if __name__ == "__main__":
    main()

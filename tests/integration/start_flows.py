"""A flow for the tests of how a worker starts flow runs: it says where it runs, then waits."""

import os
import time
from pathlib import Path

from prefect import flow
from prefect._internal import control_listener


@flow(name="start-path-probe", log_prints=False)
def probe(marker: str, pid_file: str | None = None, seconds: float = 0.0) -> str:
    """Print `marker` with the command of this process's parent, note its pid, then wait."""
    parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    # The worker's listener for this run's control channel (Prefect's engine takes its port
    # out of the environment as it starts).
    control = control_listener._configured_port
    # stdout is the point: the worker shows it
    print(f"{marker} parent: {parent} control-port: {control}", flush=True)
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    return parent

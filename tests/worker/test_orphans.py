"""A worker killed outright (SIGKILL, an OOM kill) takes its forkserver with it: nothing is
left running on the host for the next worker to pile up beside."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from booking.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is left


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def start_worker(prefect_server, tmp_path: Path):
    started: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[subprocess.Popen[bytes], int]:
        env = {
            **os.environ,
            "PREFECT_API_URL": prefect_server.api_url,
            "PREFECT_HOME": str(tmp_path / "prefect"),
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker", "--pool", f"orphans-{uuid.uuid4().hex[:8]}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(worker)
        forkserver: list[int] = []

        def found() -> bool:
            forkserver[:] = children(worker.pid)
            return bool(forkserver)

        wait_until(found, 60, "the worker started no forkserver")
        return worker, forkserver[0]

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_sigkilled_worker_takes_its_forkserver_with_it(start_worker) -> None:
    worker, forkserver = start_worker()
    socket = Path(tempfile.gettempdir()) / f"booking-forkserver-{worker.pid}.sock"
    wait_until(socket.exists, 60, "the forkserver never got ready")

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    wait_until(lambda: not alive(forkserver), 5, "the forkserver outlived its worker")


def test_a_worker_killed_while_its_forkserver_imports_leaves_nothing(start_worker) -> None:
    worker, forkserver = start_worker()  # at once: the forkserver is still importing

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    wait_until(lambda: not alive(forkserver), 5, "the forkserver outlived its worker")


def test_a_worker_told_to_stop_while_it_starts_exits_cleanly_and_leaves_nothing(
    start_worker,
) -> None:
    """A rolling restart may stop a worker that is still importing: it stops as asked (exit
    0: it took no run), not killed by the signal, and its forkserver goes with it."""
    worker, forkserver = start_worker()  # at once: the forkserver is still importing

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(60) == 0
    wait_until(lambda: not alive(forkserver), 5, "the forkserver outlived its worker")

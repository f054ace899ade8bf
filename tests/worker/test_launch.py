"""The launcher and the forkserver on their own: streams, exit codes, fallbacks.

Without a flow run id the engine logs an error and exits 1, which is enough to see where it
ran, what it wrote and how it ended; tests/integration/test_start_path.py runs real flows.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from booking.settings import PROJECT_ROOT
from worker.launch import SOCKET_ENV


@pytest.fixture(scope="module")
def forkserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("fork") / "forkserver.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.forkserver", "--socket", str(path)],
        cwd=PROJECT_ROOT,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "forkserver did not start"
        time.sleep(0.1)
    yield path
    process.terminate()
    process.wait(30)


def launch(socket_path: Path | None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT__")}
    environment.pop(SOCKET_ENV, None)
    if socket_path is not None:
        environment[SOCKET_ENV] = str(socket_path)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "worker.launch"],
        env=environment,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_a_forkserver_the_engine_starts_plainly() -> None:
    result = launch(None)

    assert result.returncode == 1
    assert "Invalid flow run id" in result.stderr + result.stdout


def test_a_forked_engine_writes_to_the_launchers_streams_and_its_exit_code_is_kept(
    forkserver: Path,
) -> None:
    result = launch(forkserver)

    assert result.returncode == 1
    assert "Invalid flow run id" in result.stderr + result.stdout
    assert "starting the engine directly" not in result.stderr


def test_a_run_with_other_settings_is_forked_too(forkserver: Path) -> None:
    # Steps take their retry policy when a run starts (tasks/retry.py), so the forkserver's
    # imports hold no setting a run could need changed.
    result = launch(forkserver, BOOKING_WEBHOOK_RETRIES="9")

    assert result.returncode == 1
    assert "Invalid flow run id" in result.stderr + result.stdout
    assert "starting the engine directly" not in result.stderr

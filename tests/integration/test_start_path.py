"""How a worker starts flow runs: forked from its forkserver (`python -m worker`),
or plainly when that is not possible. A real server, real workers, a real flow."""

import os
import signal
import time
import uuid
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from prefect.client.orchestration import SyncPrefectClient
from prefect.states import Cancelling
from prefect.utilities.callables import parameter_schema

from booking.settings import PROJECT_ROOT
from local.stack import LocalPrefect
from tests.integration.start_flows import probe

pytestmark = pytest.mark.integration
FORK_POOL = "start-path-forking"
PLAIN_POOL = "start-path-plain"
WOKEN_POOL = "start-path-woken"  # a worker polling every 5 minutes


def pool_job_variables() -> dict:
    """The job variables prefect.yaml gives every deployment (the `command` among them)."""
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    return spec["definitions"]["work_pools"]["booking_pool"]["job_variables"]


@pytest.fixture(scope="module")
def stack(prefect_server: LocalPrefect) -> Iterator[LocalPrefect]:
    """The run's Prefect server, with two work pools of this module's own and a worker on
    each: one started as the README starts one, one plain `prefect worker start`."""
    prefect_server.create_pool(FORK_POOL)
    prefect_server.create_pool(PLAIN_POOL)
    quick = {"PREFECT_WORKER_QUERY_SECONDS": "1"}
    workers = [
        prefect_server.start_worker(name="forking-worker", pool=FORK_POOL, env=quick),
        prefect_server.start_worker(
            name="plain-worker", pool=PLAIN_POOL, forkserver=False, env=quick
        ),
    ]
    yield prefect_server
    for worker in workers:
        prefect_server.stop_process(worker, timeout=5)


@pytest.fixture(scope="module")
def client(stack: LocalPrefect) -> Iterator[SyncPrefectClient]:
    with SyncPrefectClient(stack.api_url) as client:
        yield client


def deploy_probe(client: SyncPrefectClient, pool: str) -> UUID:
    flow_id = client.create_flow_from_name("start-path-probe")
    return client.create_deployment(
        flow_id=flow_id,
        name=f"probe-{pool}",
        entrypoint="tests/integration/start_flows.py:probe",
        work_pool_name=pool,
        job_variables=pool_job_variables(),
        parameter_openapi_schema=parameter_schema(probe).model_dump(),
        pull_steps=[
            {"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}
        ],
    )


def start(client: SyncPrefectClient, pool: str = FORK_POOL, **parameters) -> UUID:
    return client.create_flow_run_from_deployment(
        deploy_probe(client, pool), parameters=parameters
    ).id


def wait_final(client: SyncPrefectClient, run_id: UUID, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(0.5)
    raise AssertionError(f"flow run still {run.state_type.value} after {timeout:.0f} s")


def wait_for_file(path: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.2)
    return path.read_text()


def worker_output(stack: LocalPrefect, name: str) -> str:
    return stack.log_path(name).read_text(errors="replace")


def test_a_forked_run_completes_and_its_output_reaches_the_worker(
    stack: LocalPrefect, client: SyncPrefectClient
) -> None:
    marker = f"probe-{uuid.uuid4().hex[:8]}"

    run = wait_final(client, start(client, marker=marker))

    assert run.state_type.value == "COMPLETED"
    (line,) = [x for x in worker_output(stack, "forking-worker").splitlines() if marker in x]
    assert "worker.forkserver" in line  # forked, not a new interpreter


def test_a_workers_runs_share_one_executor_context(
    stack: LocalPrefect, client: SyncPrefectClient
) -> None:
    """One client, control channel, event stream and cancellation subscription for all of a
    worker's runs (`DrainingWorker._run_in_shared_context`), not one set per run."""
    markers = [f"shared-{uuid.uuid4().hex[:8]}" for _ in range(2)]

    for marker in markers:
        assert wait_final(client, start(client, marker=marker)).state_type.value == "COMPLETED"

    output = worker_output(stack, "forking-worker").splitlines()
    ports = {line.rsplit("control-port: ", 1)[1] for m in markers for line in output if m in line}
    assert len(ports) == 1 and "None" not in ports


def test_a_cancelled_run_is_cancelled(
    stack: LocalPrefect, client: SyncPrefectClient, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    run_id = start(client, marker="cancel-me", pid_file=str(pid_file), seconds=300)
    pid = int(wait_for_file(pid_file))

    client.set_flow_run_state(run_id, Cancelling(), force=True)

    assert wait_final(client, run_id).state_type.value == "CANCELLED"
    assert not Path(f"/proc/{pid}").exists()


def test_a_killed_run_ends_crashed(client: SyncPrefectClient, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    run_id = start(client, marker="kill-me", pid_file=str(pid_file), seconds=300)
    pid = int(wait_for_file(pid_file))

    os.kill(pid, signal.SIGKILL)

    run = wait_final(client, run_id)
    assert run.state_type.value == "CRASHED"
    assert "-9" in run.state.message  # reported as killed by SIGKILL, as a plain start would be


def test_a_worker_without_a_forkserver_starts_the_engine_plainly(
    stack: LocalPrefect, client: SyncPrefectClient
) -> None:
    marker = f"plain-{uuid.uuid4().hex[:8]}"

    run = wait_final(client, start(client, PLAIN_POOL, marker=marker))

    assert run.state_type.value == "COMPLETED"
    (line,) = [x for x in worker_output(stack, "plain-worker").splitlines() if marker in x]
    assert "worker.forkserver" not in line and "worker start" in line


def test_changed_code_is_started_plainly_and_then_by_a_fresh_forkserver(
    stack: LocalPrefect, client: SyncPrefectClient
) -> None:
    touched = PROJECT_ROOT / "flows" / "__init__.py"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        first = f"changed-{uuid.uuid4().hex[:8]}"
        assert wait_final(client, start(client, marker=first)).state_type.value == "COMPLETED"
    finally:
        os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    log = worker_output(stack, "forking-worker")
    assert "the project's code changed" in log
    (line,) = [x for x in log.splitlines() if first in x]
    assert "worker.forkserver" not in line

    deadline = time.monotonic() + 60
    while True:  # the forkserver restarts once its running children are done
        second = f"fresh-{uuid.uuid4().hex[:8]}"
        wait_final(client, start(client, marker=second))
        (line,) = [x for x in worker_output(stack, "forking-worker").splitlines() if second in x]
        if "worker.forkserver" in line or time.monotonic() > deadline:
            break
    assert "worker.forkserver" in line


def test_a_run_starts_when_scheduled_not_at_the_next_poll(
    stack: LocalPrefect, client: SyncPrefectClient
) -> None:
    """A worker that polls every five minutes still starts a run created after its first
    poll: the server's event stream wakes it (worker/wake.py)."""
    stack.create_pool(WOKEN_POOL)
    worker = stack.start_worker(
        name="woken-worker", pool=WOKEN_POOL, env={"PREFECT_WORKER_QUERY_SECONDS": "300"}
    )
    try:
        deadline = time.monotonic() + 60
        while "event stream followed" not in worker_output(stack, "woken-worker"):
            assert time.monotonic() < deadline, worker_output(stack, "woken-worker")
            time.sleep(0.2)
        marker = f"woken-{uuid.uuid4().hex[:8]}"

        run = wait_final(client, start(client, WOKEN_POOL, marker=marker), timeout=120)

        assert run.state_type.value == "COMPLETED"
        assert marker in worker_output(stack, "woken-worker")
    finally:
        stack.stop_process(worker, timeout=5)


def test_a_worker_at_its_limit_starts_the_next_run_as_one_ends_not_at_the_next_poll(
    stack: LocalPrefect, client: SyncPrefectClient
) -> None:
    """`--limit 1`: three runs scheduled at once run one after another, each started when
    the one before ends (the worker polls every five minutes)."""
    pool = "start-path-limited"
    stack.create_pool(pool)
    worker = stack.start_worker(
        "--limit", "1", name="limited-worker", pool=pool,
        env={"PREFECT_WORKER_QUERY_SECONDS": "300"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "event stream followed" not in worker_output(stack, "limited-worker"):
            assert time.monotonic() < deadline, worker_output(stack, "limited-worker")
            time.sleep(0.2)
        ids = [start(client, pool, marker=f"limited-{n}", seconds=2) for n in range(3)]

        runs = [wait_final(client, run_id, timeout=120) for run_id in ids]

        assert [run.state_type.value for run in runs] == ["COMPLETED"] * 3
        spans = sorted((run.start_time, run.end_time) for run in runs)
        assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))
    finally:
        stack.stop_process(worker, timeout=5)

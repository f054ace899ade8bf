"""CPU per flow run on a process worker: forked from the worker's forkserver (the pool's
`command`, `python -m worker.launch`) vs a new interpreter per run (`python -m prefect.engine`).

    python -m bench.worker_cpu [--runs 6]

For each variant: start `python -m worker`, create N runs of the outbox-relay deployment (a
light flow, so process start dominates), wait for all to finish, stop the worker, and read
the CPU of the worker and every process it started (RUSAGE_CHILDREN counts them once they
are reaped). The `plain` variant passes its command as a job variable on each run.
"""

import argparse
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import TERMINAL_STATES

from bench.booking_path import prefect_database
from booking.db import make_engine, upgrade_schema
from deployments.names import OUTBOX_RELAY
from local.stack import LocalPrefect, free_port


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(stack: LocalPrefect, runs: int, job_variables: dict) -> tuple[float, float, list]:
    with SyncPrefectClient(stack.api_url) as client:
        deployment = client.read_deployment_by_name(OUTBOX_RELAY.full_name)
        before = children_cpu()
        started = time.monotonic()
        worker = stack.start_worker()
        ids = [
            client.create_flow_run_from_deployment(
                deployment.id, job_variables=job_variables, idempotency_key=str(uuid.uuid4())
            ).id
            for _ in range(runs)
        ]
        while True:
            states = [client.read_flow_run(i).state_type for i in ids]
            if all(s in TERMINAL_STATES for s in states):
                break
            time.sleep(0.5)
        wall = time.monotonic() - started
        worker.terminate()
        worker.wait(30)
        stack._processes.remove(worker)
        return children_cpu() - before, wall, states


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    database_url = f"sqlite:///{tmp / 'bookings.db'}"
    upgrade_schema(make_engine(database_url))
    stack = LocalPrefect(
        home=tmp / "prefect",
        port=free_port(),
        database_url=prefect_database(),
        extra_env={"BOOKING_DATABASE_URL": database_url, "PREFECT_WORKER_QUERY_SECONDS": "1"},
    )
    stack.start()
    results = {}
    try:
        stack.deploy_all()
        engine_command = f"{sys.executable} -m prefect.engine"
        for name, variables in (("forkserver", {}), ("plain", {"command": engine_command})):
            results[name] = measure(stack, args.runs, variables)
    finally:
        stack.stop()
    print(f"{args.runs} runs of {OUTBOX_RELAY.full_name} per variant")
    for name, (cpu, wall, states) in results.items():
        print(
            f"{name:<10} CPU {cpu:6.1f} s total, {cpu / args.runs:5.2f} s per run, "
            f"wall {wall:5.1f} s, states {sorted(set(states))}"
        )
    ratio = results["plain"][0] / results["forkserver"][0]
    print(f"plain / forkserver CPU: {ratio:.2f}")


if __name__ == "__main__":
    main()

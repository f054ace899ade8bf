"""What the periodic flows cost with no bookings, apart from what Prefect and the worker cost
anyway: idle with the periodic deployments' schedules on, then paused, on the stack of
bench.pipeline (PostgreSQL-backed server, one worker started the documented way).

    python -m bench.idle [--minutes 5]

The difference is the periodic flows' own cost (deliver-due-work when work falls due and
every ten minutes as a net, the outbox relay every five), to hold against one booking's
flow-run cost.
"""

import argparse
import tempfile
from pathlib import Path

from bench.pipeline import Bench
from deployments.names import DELIVER_DUE_WORK, OUTBOX_RELAY


def line(label: str, spent: dict[str, float]) -> str:
    parts = ", ".join(f"{name} {value:.2f}" for name, value in spent.items())
    return f"{label}, CPU-s per minute: {parts}"


def finished_runs(bench: Bench) -> int:
    ((count,),) = bench._prefect_sql(
        "SELECT count(*) FROM flow_run WHERE end_time IS NOT NULL AND deployment_id IN"
        " (SELECT id FROM deployment WHERE name = ANY(%s))",
        ([DELIVER_DUE_WORK.name, OUTBOX_RELAY.name],),
    )
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="idle-") as tmp:
        bench = Bench(Path(tmp), server_env={})
        try:
            bench.start()
            bench.start_workers(1)
            bench.warm_up("bundled")
            active = bench.idle(args.minutes)
            print(line("schedules on", active), flush=True)
            bench.pause_periodic()
            before = finished_runs(bench)
            paused = bench.idle(args.minutes)
            ran = finished_runs(bench) - before
            print(line(f"schedules paused ({ran} periodic runs ran meanwhile)", paused), flush=True)
            print(
                line("periodic flows alone", {k: active[k] - paused[k] for k in active}),
                flush=True,
            )
        finally:
            bench.stop()


if __name__ == "__main__":
    main()

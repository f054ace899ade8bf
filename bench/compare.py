"""Two commits side by side on this machine: bursts of bookings on each, interleaved.

    python -m bench.compare BEFORE AFTER [--rounds 2] [--burst 60] [--idle-minutes 0]

On a shared machine a figure moves more from one minute to the next than many changes move
it, so one commit's run today against another's from last week says little. This checks out
both commits (`git worktree`, under the system's temporary directory), then runs, round by
round, BEFORE then AFTER, each on a stack of its own started from its own checkout
(bench/pipeline.py's `Bench`: Prefect on PostgreSQL, one `python -m worker`, the periodic
deployments paused): one burst of `--burst` bookings, then, with `--idle-minutes`, the
stack idle with its periodic deployments on their schedules. It prints each run as it ends
and, per commit, the median of its rounds: bookings a minute, CPU seconds a booking by
process tree, and the most PostgreSQL connections open at once during the burst.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from booking.settings import PROJECT_ROOT

# One round on one checkout; run with that checkout as the working directory.
ONE_ROUND = """
import json, os, sys, tempfile, threading, time
sys.path.insert(0, os.getcwd())
from pathlib import Path
import psycopg
from bench.pipeline import Bench
from local.stack import flush_redis

burst, idle_minutes = int(sys.argv[1]), float(sys.argv[2])
flush_redis("redis://127.0.0.1:6379/1", databases=1)
bench = Bench(Path(tempfile.mkdtemp(prefix="bench-compare-")),
              server_env={"PREFECT_SERVER_DOCKET_URL": "redis://127.0.0.1:6379/1"})
peak, stop = [0], threading.Event()

def count_connections():
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        while not stop.is_set():
            (n,), = c.execute("SELECT count(*) FROM pg_stat_activity").fetchall()
            peak[0] = max(peak[0], n)
            time.sleep(0.2)

bench.start()
try:
    bench.pause_periodic(True)
    bench.start_workers(1)
    bench.warm_up("bundled")
    threading.Thread(target=count_connections, daemon=True).start()
    scenario = bench.burst("bundled", burst)
    stop.set()
    result = {"per_minute": scenario.per_minute, "cpu": scenario.cpu_per_booking(),
              "peak_connections": peak[0], "states": scenario.states,
              "undelivered": scenario.undelivered}
    if idle_minutes:
        bench.pause_periodic(False)
        time.sleep(20)
        result["idle"] = bench.idle(idle_minutes)
finally:
    stop.set()
    bench.stop()
print("RESULT " + json.dumps(result), flush=True)
"""


def checkout(rev: str) -> Path:
    """A worktree of `rev` (created once, kept for later comparisons)."""
    sha = (
        subprocess.run(
            ["git", "rev-parse", "--short", rev], cwd=PROJECT_ROOT, check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
    )
    tree = Path(tempfile.gettempdir()) / f"bench-compare-{sha}"
    if not tree.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), sha],
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
        )
    return tree


def one_round(tree: Path, burst: int, idle_minutes: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", ONE_ROUND, str(burst), str(idle_minutes)],
        cwd=tree,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"a round on {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def summary(rounds: list[dict[str, Any]]) -> dict[str, float]:
    row = {
        "per minute": statistics.median(r["per_minute"] for r in rounds),
        **{
            f"{tree} CPU-s": statistics.median(r["cpu"][tree] for r in rounds)
            for tree in ("machine", "server", "worker", "postgres")
        },
        "peak connections": statistics.median(r["peak_connections"] for r in rounds),
    }
    if all("idle" in r for r in rounds):
        for tree in ("machine", "server", "worker", "postgres", "redis"):
            row[f"idle {tree} CPU-s/min"] = statistics.median(r["idle"][tree] for r in rounds)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--burst", type=int, default=60)
    parser.add_argument("--idle-minutes", type=float, default=0.0)
    args = parser.parse_args()
    trees = {rev: checkout(rev) for rev in (args.before, args.after)}
    results: dict[str, list[dict[str, Any]]] = {rev: [] for rev in trees}
    for n in range(args.rounds):
        for rev, tree in trees.items():
            result = one_round(tree, args.burst, args.idle_minutes)
            results[rev].append(result)
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in result["cpu"].items())
            print(
                f"round {n + 1} {rev}: {result['per_minute']:.1f} a minute, CPU-s a booking:"
                f" {cpu}; peak connections {result['peak_connections']};"
                f" runs {result['states']}, undelivered {result['undelivered']}"
                + (
                    "; idle, CPU-s a minute: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in result["idle"].items())
                    if "idle" in result
                    else ""
                ),
                flush=True,
            )
    rows = {rev: summary(rounds) for rev, rounds in results.items()}
    print(f"\nmedians of {args.rounds} rounds, a burst of {args.burst}, one worker:\n")
    print(f"| | {args.before} | {args.after} |\n| --- | --- | --- |")
    for key in rows[args.before]:
        print(f"| {key} | {rows[args.before][key]:.2f} | {rows[args.after][key]:.2f} |")


if __name__ == "__main__":
    main()

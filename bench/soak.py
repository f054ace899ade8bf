"""A soak: a steady load for a long time, watching memory and latency for drift.

    python -m bench.soak [--minutes 30] [--per-minute 30] [--fail-rate 0.1]
                         [--write-doc]

The stack of `python -m bench.pipeline` (a Prefect server and a bookings database on
PostgreSQL, one `python -m worker`, the periodic flows on their schedules), with a
subscriber to every booking that answers 503 to --fail-rate of requests (drawn at random;
the pipeline's retries carry those). One booking every 60/--per-minute seconds through
`create_booking`, for --minutes.

Every minute it samples the resident memory (VmRSS) of the server's processes, the worker,
the forkserver and the flow runs alive (sampled every 5 s within the minute; their median),
and the commit -> delivery latency of that minute's bookings.

Targets (from minute 5 on, when imports and caches have settled): for each process, the
mean memory of the last 10 minutes within 10 % of minutes 5-15; the p95 latency of those
two windows within 20 %. At the end: no booking undelivered, none delivered twice (by
`webhook-id`), every flow run final.

--write-doc writes docs/perf/soak.json and docs/perf/soak.png and the soak section of
docs/performance.md.
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect.client.schemas.objects import TERMINAL_STATES

from bench.cpu import processes
from bench.pipeline import Bench, machine, pct
from bench.receiver import Receiver
from bench.report import replace_section, say_verdicts
from booking.settings import PROJECT_ROOT
from local.stack import flush_redis

SAMPLE_SECONDS = 5
DOC = PROJECT_ROOT / "docs" / "performance.md"
PERF = PROJECT_ROOT / "docs" / "perf"


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


@dataclass
class Minute:
    minute: int
    memory: dict[str, float] = field(default_factory=dict)  # MiB by process
    latency: dict[str, list[float]] = field(default_factory=dict)  # s by subscriber


class Sampler:
    """Samples memory every SAMPLE_SECONDS in a thread; closes a Minute each minute."""

    def __init__(self, bench: Bench):
        self.bench = bench
        self.minutes: list[Minute] = []
        self._samples: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def processes(self) -> dict[str, list[int]]:
        worker = self.bench.workers[0].pid
        procs = processes()  # one walk of /proc for the parent links

        def children(pid: int) -> list[int]:
            return [p.pid for p in procs.values() if p.ppid == pid]

        forkservers = [p for p in children(worker) if "worker.forkserver" in cmdline(p)]
        return {
            "server": self.bench.stack.server_pids,
            "worker": [worker],
            "forkserver": forkservers,
            "flow run": [run for f in forkservers for run in children(f)],
        }

    def sample(self) -> None:
        for name, pids in self.processes().items():
            values = [v for pid in pids if (v := rss_mib(pid)) is not None]
            if values:
                # The server and the worker are one process each (summed if several); a
                # flow run is one of many: the typical one.
                value = statistics.median(values) if name == "flow run" else sum(values)
                self._samples.setdefault(name, []).append(value)

    def close_minute(self, minute: int) -> Minute:
        closed = Minute(
            minute,
            memory={
                name: (statistics.median(v) if name == "flow run" else v[-1])
                for name, v in self._samples.items()
                if v
            },
        )
        self._samples = {}
        self.minutes.append(closed)
        return closed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()


def window(minutes: list[Minute], first: int, last: int) -> list[Minute]:
    return [m for m in minutes if first <= m.minute <= last]


def unfinished_runs(bench: Bench, settle_seconds: float = 120) -> int:
    """Flow runs of any flow not final, apart from those scheduled for later (the periodic
    flows' next runs): waits up to `settle_seconds` for a periodic run under way to end."""
    deadline = time.monotonic() + settle_seconds
    while True:
        ((count,),) = bench._prefect_sql(
            "SELECT count(*) FROM flow_run WHERE state_type::text <> ALL(%s)"
            " AND NOT (state_type = 'SCHEDULED' AND expected_start_time > now())",
            ([state.value for state in TERMINAL_STATES],),
        )
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(2)


def soak(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    flush_redis(args.docket_url, databases=1)
    bench = Bench(tmp, server_env={"PREFECT_SERVER_DOCKET_URL": args.docket_url})
    # The one subscriber answers 503 to a share of requests.
    bench.receiver.stop()
    flaky = bench.receiver = Receiver(fail_rate=args.fail_rate)
    receivers = {"subscriber": flaky}
    bench.start()
    try:
        bench.start_workers(1)
        bench.warm_up("bundled")
        sampler = Sampler(bench)
        sampler.start()
        cpu_before = bench.meter.snapshot()
        pace = 60 / args.per_minute
        booked: list[tuple[str, str, float]] = []
        by_minute: dict[int, list[tuple[str, float]]] = {}  # uid, commit time
        with bench.dispatcher("bundled") as dispatcher:
            started = time.time()
            for minute in range(1, args.minutes + 1):
                this_minute = []
                for i in range(args.per_minute):
                    slot = started + ((minute - 1) * args.per_minute + i) * pace
                    time.sleep(max(0.0, slot - time.time()))
                    this_minute.append(bench.book(dispatcher))
                booked += this_minute
                by_minute[minute] = [(uid, committed) for uid, _, committed in this_minute]
                time.sleep(max(0.0, started + minute * 60 - time.time()))
                closed = sampler.close_minute(minute)
                print(
                    f"minute {minute:>2}: "
                    + ", ".join(f"{k} {v:.0f} MiB" for k, v in closed.memory.items()),
                    flush=True,
                )
            sampler.stop()
            keys = bench.keys("bundled", [event for _, event, _ in booked])
            bench.wait_final(keys, timeout=1800)
            cpu = {k: v / len(booked) for k, v in bench.meter.since(cpu_before).items()}
            print("CPU-s per booking: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
        deadline = time.time() + 600  # a 503'd message may wait for its retries
        while time.time() < deadline and any(
            r.seen(uid) is None for r in receivers.values() for uid, *_ in booked
        ):
            time.sleep(1)
        for m in sampler.minutes:
            m.latency = {
                name: [
                    seen - committed
                    for uid, committed in by_minute[m.minute]
                    if (seen := r.seen(uid)) is not None
                ]
                for name, r in receivers.items()
            }
        rows = bench.runs(keys)
        not_final = unfinished_runs(bench)
    finally:
        bench.stop()
    return {
        "machine": machine(),
        "args": vars(args),
        "bookings": len(booked),
        "cpu_per_booking": cpu,
        "minutes": [
            {"minute": m.minute, "memory": m.memory, "latency": m.latency} for m in sampler.minutes
        ],
        "runs": dict(Counter(state for state, *_ in rows)),
        "not_final": not_final,
        "undelivered": {
            name: sum(r.seen(uid) is None for uid, *_ in booked) for name, r in receivers.items()
        },
        "delivered_twice": {name: r.duplicates() for name, r in receivers.items()},
        "refused": flaky.refused,
    }


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    minutes = [Minute(**m) for m in results["minutes"]]
    last = max(m.minute for m in minutes)
    # A short trial run (under 25 minutes) compares its first and second halves instead.
    early_span = (5, 15) if last >= 25 else (1, last // 2)
    late_span = (last - 9, last) if last >= 25 else (last // 2 + 1, last)
    early, late = window(minutes, *early_span), window(minutes, *late_span)
    span = f"minutes {late_span[0]}-{late_span[1]} vs {early_span[0]}-{early_span[1]}"
    rows = []
    for name in minutes[-1].memory:
        a = statistics.mean(m.memory[name] for m in early if name in m.memory)
        b = statistics.mean(m.memory[name] for m in late if name in m.memory)
        rows.append(
            (
                f"memory, {name}: {span}",
                f"{b:.1f} vs {a:.1f} MiB ({b / a - 1:+.1%})",
                "within 10 %",
                abs(b / a - 1) <= 0.10,
            )
        )
    for name in minutes[-1].latency:
        a = pct([x for m in early for x in m.latency[name]], 95)
        b = pct([x for m in late for x in m.latency[name]], 95)
        rows.append(
            (
                f"delivery latency p95 ({name}): {span}",
                f"{b:.2f} vs {a:.2f} s ({b / a - 1:+.1%})",
                "within 20 %",
                abs(b / a - 1) <= 0.20,
            )
        )
    not_final = results["not_final"]
    lost = sum(results["undelivered"].values())
    twice = sum(results["delivered_twice"].values())
    rows += [
        ("bookings undelivered", str(lost), "0", lost == 0),
        ("messages delivered twice (by webhook-id)", str(twice), "0", twice == 0),
        ("flow runs not final at the end", str(results["not_final"]), "0", not_final == 0),
    ]
    return rows


def markdown(results: dict[str, Any]) -> str:
    args = results["args"]
    lines = [
        "## A soak",
        "",
        f"`python -m bench.soak --minutes {args['minutes']} --per-minute {args['per_minute']}"
        f" --fail-rate {args['fail_rate']} --write-doc` ({results['machine']['date']}, commit"
        f" {results['machine']['commit']}, alone on the machine): {results['bookings']} bookings"
        f" at a steady {args['per_minute']} a minute, to a subscriber answering 503"
        f" to {args['fail_rate']:.0%} of requests at random ({results['refused']} refused),"
        " one worker, the periodic flows on their schedules. Resident memory (VmRSS) sampled"
        " every 5 s, the minute's last sample (a flow run: the median of those alive).",
        "",
        "| measure | seen | target | met |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else 'no'} |" for a, b, c, ok in verdicts(results)]
    lines += ["", "![memory and latency over the soak](perf/soak.png)", ""]
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [Minute(**m) for m in results["minutes"]]
    xs = [m.minute for m in minutes]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for name in minutes[-1].memory:
        top.plot(xs, [m.memory.get(name) for m in minutes], marker=".", label=name)
    top.set_ylabel("resident memory, MiB")
    top.set_ylim(bottom=0)
    top.legend(loc="lower right")
    top.set_title("Soak: memory and delivery latency per minute")
    for name in minutes[-1].latency:
        for q, style in ((50, "-"), (95, "--")):
            bottom.plot(
                xs,
                [pct(m.latency[name], q) for m in minutes],
                style,
                marker=".",
                label=f"{name} p{q}",
            )
    bottom.set_ylabel("commit -> delivered, s")
    bottom.set_xlabel("minute")
    bottom.set_ylim(bottom=0)
    bottom.legend(loc="upper right")
    for ax in (top, bottom):
        if xs[-1] >= 25:  # the two windows compared
            ax.axvspan(5, 15, color="0.9")
            ax.axvspan(xs[-1] - 9, xs[-1], color="0.9")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def write_doc(results: dict[str, Any]) -> None:
    PERF.mkdir(exist_ok=True)
    (PERF / "soak.json").write_text(json.dumps(results, indent=1) + "\n")
    chart(results, PERF / "soak.png")
    replace_section(DOC, "## A soak", markdown(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--per-minute", type=int, default=30)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--docket-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--write-doc", action="store_true")
    parser.add_argument("--from-json", type=Path, help="report a saved run instead")
    args = parser.parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        results = soak(args)
        (Path(tempfile.gettempdir()) / "soak.json").write_text(json.dumps(results))
    met = say_verdicts(verdicts(results))
    if args.write_doc:
        write_doc(results)
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Writes what `python -m bench.pipeline --write-doc` measured into docs/performance.md.

The results go between the two markers below; the prose around them is kept. A chart of
latency and CPU per booking, before and after, is drawn from the run and from the figures
of the run recorded as "before" (docs/perf/before.json, the same command at an earlier
commit).
"""

import json
import math
from pathlib import Path
from typing import Any

from booking.settings import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "performance.md"
CHART = PROJECT_ROOT / "docs" / "performance.png"
BEFORE = PROJECT_ROOT / "docs" / "perf" / "before.json"
AFTER = PROJECT_ROOT / "docs" / "perf" / "after.json"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
GROUPS = ("server", "worker", "postgres")
# The processes of the stack itself, apart from what else the machine runs.
STACK = ("server", "worker", "postgres", "redis")


def pct(values: list[float], q: int) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def scenario(results: dict, name: str, arrangement: str, workers: int = 1) -> dict | None:
    for row in results["scenarios"]:
        if (row["name"], row["arrangement"], row["workers"]) == (name, arrangement, workers):
            return row
    return None


def best_arrangement(results: dict) -> str:
    """The arrangement whose one-worker burst cost the least CPU per booking."""
    bursts = [r for r in results["scenarios"] if r["name"] == "burst" and r["workers"] == 1]
    return min(bursts, key=lambda r: r["cpu_per_booking"]["machine"])["arrangement"]


def targets(results: dict) -> list[tuple[str, str, str, bool]]:
    """(what, measured, target, met) for each target of the performance issue."""
    best = best_arrangement(results)
    burst = scenario(results, "burst", best)
    paced = scenario(results, "paced", best)
    scaled = next(
        (r for r in results["scenarios"] if r["name"] == "burst" and r["workers"] == 2), None
    )
    assert burst and paced
    cpu = burst["cpu_per_booking"]
    idle = results["idle_per_minute"]
    rows = [
        (
            f"CPU per booking, whole machine ({best}, burst)",
            f"{cpu['machine']:.2f} s",
            "≤ 1.0 s",
            cpu["machine"] <= 1.0,
        ),
        (
            "… of it the Prefect server",
            f"{cpu['server']:.2f} s",
            "≤ 0.35 s",
            cpu["server"] <= 0.35,
        ),
        (
            "bookings fully processed per minute, one worker",
            f"{burst['per_minute']:.1f}",
            "≥ 120",
            burst["per_minute"] >= 120,
        ),
        (
            "… a run's wait before Running / its run time, p50",
            f"{pct(burst['waits'], 50):.1f} s / {pct(burst['durations'], 50):.2f} s",
            "reported",
            True,
        ),
    ]
    if scaled:
        rows.append(
            (
                "… with two workers",
                f"{scaled['per_minute']:.1f}",
                "reported",
                True,
            )
        )
    lat = paced["latencies"]
    rows += [
        (
            "paced: commit → BOOKING_CREATED at the subscriber, p50",
            f"{pct(lat, 50):.2f} s",
            "≤ 1.0 s",
            pct(lat, 50) <= 1.0,
        ),
        ("… p95", f"{pct(lat, 95):.2f} s", "≤ 1.5 s", pct(lat, 95) <= 1.5),
        (
            f"burst of {burst['bookings']}: delivered, Failed or Crashed runs",
            f"{burst['bookings'] - burst['undelivered']} of {burst['bookings']} delivered, "
            f"{burst['states'].get('FAILED', 0) + burst['states'].get('CRASHED', 0)} failed",
            "all delivered, none failed",
            burst["undelivered"] == 0
            and not burst["states"].get("FAILED")
            and not burst["states"].get("CRASHED"),
        ),
        ("… commit → delivery p95", f"{pct(burst['latencies'], 95):.1f} s", "reported", True),
    ]
    for kind, cases in results["booking_path"].items():
        live = cases["create+live"]
        rows.append(
            (
                f"create_booking with hand-off vs floor, {kind}, p50 / p99",
                f"{live['p50_ratio']:.2f}x / {live['p99_ratio']:.2f}x",
                "≤ 1.3x / ≤ 1.5x",
                live["p50_ratio"] <= 1.3 and live["p99_ratio"] <= 1.5,
            )
        )
    stack = sum(idle.get(name, 0.0) for name in STACK)
    rows.append(
        (
            "idle (no bookings): CPU per minute, this stack (server, worker, PostgreSQL, Redis)",
            f"{stack:.2f} s",
            "≤ 3 s",
            stack <= 3,
        )
    )
    rows.append(
        (
            "… the whole machine, its other processes included",
            f"{idle['machine']:.2f} s",
            "reported",
            True,
        )
    )
    if requests := results.get("requests"):
        rows.append(
            (
                "per booking: Prefect API requests / log lines / events / task runs",
                f"{requests['requests_per_booking']:.1f} / {requests['logs_per_booking']:.1f} /"
                f" {requests['events_per_booking']:.1f} / {requests['task_runs_per_booking']:.1f}",
                "reported (table below)",
                True,
            )
        )
    return rows


def markdown(results: dict, command: str) -> str:
    machine = results["machine"]
    lines = [
        START,
        "",
        f"Measured {machine['date']} at commit `{machine['commit']}` with:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB;"
        f" Python {machine['python']}, Prefect {machine['prefect']},"
        f" PostgreSQL {machine['postgresql']} (Prefect's database and the bookings')."
        " One run; figures move between runs on these shared machines, ratios less.",
        "",
        "| target | measured | wanted | met |",
        "| --- | --- | --- | --- |",
    ]
    for what, measured, wanted, met in targets(results):
        lines.append(f"| {what} | {measured} | {wanted} | {'yes' if met else 'no'} |")
    lines += [
        "",
        "Every case, both arrangements (CPU seconds per booking, by process tree; latency is"
        " commit → BOOKING_CREATED at the subscriber; wait is a run's creation → Running):",
        "",
        "| case | arrangement | workers | per min | latency p50 / p95 s | CPU machine"
        " | server | worker | postgres | run wait p50 / p95 s | run time p50 / p95 s | runs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["scenarios"]:
        cpu = row["cpu_per_booking"]
        lines.append(
            f"| {row['name']} | {row['arrangement']} | {row['workers']} |"
            f" {row['per_minute']:.1f} |"
            f" {pct(row['latencies'], 50):.2f} / {pct(row['latencies'], 95):.2f} |"
            f" {cpu['machine']:.2f} | {cpu['server']:.2f} | {cpu['worker']:.2f} |"
            f" {cpu['postgres']:.2f} |"
            f" {pct(row['waits'], 50):.2f} / {pct(row['waits'], 95):.2f} |"
            f" {pct(row['durations'], 50):.2f} / {pct(row['durations'], 95):.2f} |"
            f" {', '.join(f'{n} {s.lower()}' for s, n in sorted(row['states'].items()))} |"
        )
    idle = results["idle_per_minute"]
    lines += [
        "",
        f"Idle for {results['args']['idle_minutes']:g} minutes with one worker (periodic flows"
        " and worker polling only), CPU seconds per minute: "
        + ", ".join(f"{k} {v:.2f}" for k, v in idle.items() if k != "this process")
        + "."
        + (
            " Runs that ended meanwhile: "
            + (", ".join(f"{name} {n}" for name, n in sorted(ran.items())) or "none")
            + "."
            if (ran := results.get("idle_runs")) is not None
            else ""
        ),
        "",
        "`create_booking` against the floor (read the event type, insert booking and attendee,"
        " commit), a new session per call, cases interleaved call by call:",
        "",
        "| database | case | p50 ms | p99 ms | p50 x floor | p99 x floor |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, cases in results["booking_path"].items():
        for case, row in cases.items():
            lines.append(
                f"| {kind} | {case} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |"
                f" {row['p50_ratio']:.2f} | {row['p99_ratio']:.2f} |"
            )
    if requests := results.get("requests"):
        from bench.requests import table

        lines += [
            "",
            "What one booking's run asks of the Prefect server, counted on a stack of its own"
            " with the server's access log on (it costs the server CPU, so not during the"
            " timed cases; `bench/requests.py`):",
            "",
            table(requests),
        ]
    lines += ["", "![latency and CPU per booking, before and after](performance.png)", "", END]
    return "\n".join(lines)


def chart(results: dict, before: dict | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [("before", before), ("after", results)] if before else [("after", results)]
    fig, (latency, cpu) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, data in runs:
        paced = scenario(data, "paced", "bundled")
        if paced and paced["latencies"]:
            values = sorted(paced["latencies"])
            shares = [(i + 1) / len(values) for i in range(len(values))]
            latency.step(values, shares, where="post", label=f"{label} (paced, bundled)")
    latency.set_xlabel("commit → BOOKING_CREATED at the subscriber (s)")
    latency.set_ylabel("share of bookings")
    latency.set_xlim(left=0)
    latency.grid(alpha=0.3)
    latency.legend(loc="lower right")
    labels = [f"{label}\n(burst, bundled)" for label, _ in runs]
    bottoms = [0.0] * len(runs)
    for group in (*GROUPS, "other"):
        heights = []
        for _, data in runs:
            burst = scenario(data, "burst", "bundled")
            per = burst["cpu_per_booking"] if burst else {}
            if group == "other":
                heights.append(max(0.0, per.get("machine", 0) - sum(per.get(g, 0) for g in GROUPS)))
            else:
                heights.append(per.get(group, 0.0))
        cpu.bar(labels, heights, bottom=bottoms, label=group)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    cpu.set_ylabel("CPU seconds per booking, whole machine")
    cpu.axhline(2.0, color="black", linestyle="--", linewidth=1, label="target 2 s")
    cpu.legend()
    cpu.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(CHART, dpi=110)


def write_doc(results: dict[str, Any], command: str) -> None:
    before = json.loads(BEFORE.read_text()) if BEFORE.exists() else None
    AFTER.parent.mkdir(parents=True, exist_ok=True)
    AFTER.write_text(json.dumps(results, indent=1, default=str))
    chart(results, before)
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + markdown(results, command) + tail)


def main() -> None:
    """Redraw the doc and chart from the last recorded run (docs/perf/after.json)."""
    results = json.loads(AFTER.read_text())
    write_doc(results, results.get("command", "python -m bench.pipeline --write-doc"))


if __name__ == "__main__":
    main()


def replace_section(doc: Path, heading: str, section: str) -> None:
    """Put `section` (which starts with `heading`) in place of that section of `doc`, or
    at its end."""
    text = doc.read_text()
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)


def say_verdicts(rows: list[tuple[str, str, str, bool]]) -> bool:
    """Print each measure beside its target; True when every target is met."""
    for measure, seen, target, ok in rows:
        print(f"{measure}: {seen} (target {target}) {'met' if ok else 'NOT MET'}")
    return all(ok for *_, ok in rows)

"""What one booking's run asks of the Prefect server: API requests by route, WebSocket
sessions, log lines, events and task runs.

    python -m bench.requests [--n 20] [--pace 3] [--arrangement bundled]

Starts the same stack as bench.pipeline (Prefect server and bookings on PostgreSQL, one
`python -m worker`, a subscriber on loopback) with the server's access log on, books `--n`
bookings one every `--pace` seconds with the periodic deployments paused, and counts what
the server saw from the first booking until every run was final and its logs were sent:
access-log lines by method and route (ids folded to `{id}`), the WebSocket sessions it
accepted, by route, and the rows the runs left in
Prefect's `log`, `events` and `task_run` tables. The access log costs the server CPU, so
this is a run of its own, not a part of bench.pipeline's timed ones.
"""

import argparse
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.pipeline import Bench
from deployments.names import ARRANGEMENTS

ACCESS = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/api/\S*?)(?:\?\S*)? HTTP/1\.1" (\d{3})')
# A WebSocket session the server accepted: each costs it a handshake and, for a subscriber
# (`/events/out`), a query of past events and a filter every event is matched against.
SOCKET = re.compile(r'"WebSocket (/api/\S*)" \[accepted\]')
ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Requests the worker makes whether or not there is work (its poll and heartbeat): counted
# apart, per second of the run, so they do not blur what a booking costs.
POLLING = (
    "POST /api/work_pools/{id}/get_scheduled_flow_runs",
    "POST /api/work_pools/{id}/workers/heartbeat",
)


def route(method: str, path: str) -> str:
    path = ID.sub("/{id}", path)
    path = re.sub(r"/work_pools/[^/]+", "/work_pools/{id}", path)
    path = re.sub(r"/by-name/[^/]+", "/by-name/{name}", path)
    return f"{method} {path}"


def count(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-requests-"))
    bench = Bench(tmp, server_env={"PREFECT_SERVER_LOGGING_LEVEL": "INFO"})
    bench.start()
    try:
        bench.pause_periodic()
        bench.start_workers(1)
        bench.warm_up(args.arrangement)
        time.sleep(3)
        server_log = bench.stack.log_path("server")
        offset = server_log.stat().st_size
        since = bench._prefect_sql("SELECT now()", ())[0][0]
        started = time.monotonic()
        scenario = bench.paced(args.arrangement, args.n, args.pace)
        time.sleep(5)  # the runs' last logs and events are sent in the background
        seconds = time.monotonic() - started
        text = server_log.read_bytes()[offset:].decode(errors="replace")
        routes = Counter(route(m, p) for m, p, _ in ACCESS.findall(text))
        sockets = Counter(route("WebSocket", p) for p in SOCKET.findall(text))
        (logs, events, task_runs, flow_runs) = bench._prefect_sql(
            "SELECT (SELECT count(*) FROM log WHERE timestamp >= %s),"
            " (SELECT count(*) FROM events WHERE occurred >= %s),"
            " (SELECT count(*) FROM task_run WHERE created >= %s),"
            " (SELECT count(*) FROM flow_run WHERE created >= %s)",
            (since, since, since, since),
        )[0]
        events_by = dict(
            bench._prefect_sql(
                "SELECT event, count(*) FROM events WHERE occurred >= %s GROUP BY event"
                " ORDER BY count(*) DESC",
                (since,),
            )
        )
    finally:
        bench.stop()
    n = args.n
    polling = {r: routes.pop(r) for r in POLLING if r in routes}
    return {
        "n": n,
        "arrangement": args.arrangement,
        "delivered": n - scenario.undelivered,
        "states": scenario.states,
        "seconds": seconds,
        "per_booking": {r: c / n for r, c in routes.most_common()},
        "requests_per_booking": sum(routes.values()) / n,
        "polling_per_second": {r: c / seconds for r, c in polling.items()},
        "sockets_per_booking": sum(sockets.values()) / n,
        "sockets_by_route_per_booking": {r: c / n for r, c in sockets.most_common()},
        "logs_per_booking": logs / n,
        "events_per_booking": events / n,
        "events_by_kind_per_booking": {e: c / n for e, c in events_by.items()},
        "task_runs_per_booking": task_runs / n,
        "flow_runs_per_booking": flow_runs / n,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['n']} bookings ({result['arrangement']}), one every few seconds;"
        f" {result['delivered']} delivered, runs {result['states']}.",
        "",
        "| per booking | count |",
        "| --- | --- |",
        f"| API requests (without the worker's poll) | {result['requests_per_booking']:.1f} |",
        *(f"| `{r}` | {c:.1f} |" for r, c in result["per_booking"].items()),
        f"| WebSocket sessions opened | {result.get('sockets_per_booking', 0.0):.1f} |",
        *(
            f"| `{r}` | {c:.1f} |"
            for r, c in result.get("sockets_by_route_per_booking", {}).items()
        ),
        f"| log lines stored | {result['logs_per_booking']:.1f} |",
        f"| events stored | {result['events_per_booking']:.1f} |",
        *(f"| event `{e}` | {c:.1f} |" for e, c in result["events_by_kind_per_booking"].items()),
        f"| flow runs / task runs | {result['flow_runs_per_booking']:.1f} /"
        f" {result['task_runs_per_booking']:.1f} |",
        "",
        "The worker's own requests, per second whatever it runs: "
        + ", ".join(f"`{r}` {c:.2f}" for r, c in result["polling_per_second"].items())
        + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="bookings")
    parser.add_argument("--pace", type=float, default=3.0, help="seconds between bookings")
    parser.add_argument("--arrangement", default="bundled", choices=list(ARRANGEMENTS))
    print(table(count(parser.parse_args())))


if __name__ == "__main__":
    main()

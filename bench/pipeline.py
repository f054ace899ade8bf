"""What a booking's background work costs, end to end, both arrangements side by side.

    python -m bench.pipeline [--paced 20] [--pace 5] [--burst 60] [--idle-minutes 10]
                             [--requests-n 10] [--save docs/perf/after.json] [--write-doc]

Starts a Prefect server on PostgreSQL, a bookings database on PostgreSQL, deploys prefect.yaml,
starts workers as an operator would (`LocalPrefect.start_worker`) and a subscriber on loopback,
then runs, in one go:

  paced      one booking every --pace seconds: commit -> the subscriber has BOOKING_CREATED
  burst      --burst bookings at once: bookings fully processed per minute, CPU per booking by
             process, commit -> delivery, how long runs waited to start and how long they ran
  burst x2   the same with two workers (the arrangement of --scale-arrangement)
  idle       --idle-minutes without bookings: what the periodic flows cost
  booking    create_booking (hand-off to a live dispatcher) against the floor, on PostgreSQL
             and SQLite (bench/booking_path.py)
  requests   --requests-n bookings on a stack of their own with the server's access log on:
             Prefect API requests by route, log lines, events and task runs per booking
             (bench/requests.py)

The measuring side learns that runs are final from one SQL count per second on Prefect's
database, and reads the runs once at the end: polling the API would add server CPU. CPU is
read from /proc by process tree (bench/cpu.py).
"""

import argparse
import json
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from prefect.client.schemas.objects import TERMINAL_STATES
from sqlalchemy import Engine
from sqlmodel import Session

from bench import booking_path
from bench.cpu import Meter, by_name, by_roots
from bench.receiver import Receiver
from booking.db import make_engine, upgrade_schema
from booking.models import EventType, User, WebhookSubscription
from booking.service import create_booking
from booking.settings import PROJECT_ROOT, Settings
from deployments.names import ARRANGEMENTS, DELIVER_DUE_WORK, OUTBOX_RELAY, idempotency_key
from handoff.dispatch import PostCommitDispatcher
from local import postgres
from local.stack import LocalPrefect, flush_redis, free_port, scale_out_env

TRIGGERS = ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_REQUESTED"]


@dataclass
class Scenario:
    name: str
    arrangement: str
    workers: int
    bookings: int
    latencies: list[float] = field(default_factory=list)  # commit -> BOOKING_CREATED, s
    cpu: dict[str, float] = field(default_factory=dict)  # seconds, whole scenario
    seconds: float = 0.0  # first commit -> last run final
    states: dict[str, int] = field(default_factory=dict)
    waits: list[float] = field(default_factory=list)  # run created -> running, s
    durations: list[float] = field(default_factory=list)  # running -> final, s
    undelivered: int = 0
    duplicates: int = 0

    @property
    def per_minute(self) -> float:
        return self.bookings / self.seconds * 60 if self.seconds else 0.0

    def cpu_per_booking(self) -> dict[str, float]:
        return {name: value / self.bookings for name, value in self.cpu.items()}


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class Bench:
    def __init__(self, tmp: Path, server_env: dict[str, str], scale_out: bool = False):
        self.tmp = tmp
        self.bookings_url = booking_path.new_database("postgresql", tmp)
        self.prefect_url = booking_path.prefect_database()
        self.engine: Engine = make_engine(self.bookings_url)
        upgrade_schema(self.engine)
        self.receiver = Receiver()
        self.stack = LocalPrefect(
            home=tmp / "prefect",
            port=free_port(),
            database_url=self.prefect_url,
            api_workers=2 if scale_out else 1,
            separate_services=scale_out,
            extra_env={
                "BOOKING_DATABASE_URL": self.bookings_url,
                "BOOKING_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
                **server_env,
            },
        )
        self.workers: list[subprocess.Popen[bytes]] = []
        self.meter = Meter(
            {
                "server": by_roots(lambda: self.stack.server_pids),
                "worker": by_roots(lambda: [w.pid for w in self.workers]),
                "postgres": by_name("postgres"),
                "redis": by_name("redis-server"),
            }
        )
        self.event_type_id = 0
        self._count = 0

    # -- setup ---------------------------------------------------------------------------

    def start(self) -> None:
        self.stack.start()
        self.stack.deploy_all()
        with Session(self.engine, expire_on_commit=False) as session:
            host = User(name="Bench Host", email="host@bench.example")
            session.add(host)
            session.commit()
            event_type = EventType(slug="bench", title="Bench call", owner_id=host.id)
            session.add(event_type)
            session.commit()
            session.add(
                WebhookSubscription(
                    user_id=host.id, subscriber_url=self.receiver.url, triggers=TRIGGERS
                )
            )
            session.commit()
            assert event_type.id is not None
            self.event_type_id = event_type.id

    def pause_periodic(self, paused: bool = True) -> None:
        """Pause (or resume) the periodic deployments (deliver-due-work, the outbox relay);
        pausing deletes their runs already scheduled."""
        self.stack.pause_deployments((DELIVER_DUE_WORK, OUTBOX_RELAY), paused)

    def start_workers(self, count: int) -> None:
        for n in range(len(self.workers), count):
            name = f"worker-{n + 1}"
            log = self.stack.log_path(name)
            offset = log.stat().st_size if log.exists() else 0
            self.workers.append(self.stack.start_worker(name=name))
            deadline = time.monotonic() + 90
            while b"started" not in log.read_bytes()[offset:] if log.exists() else True:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start; see {log}")
                time.sleep(0.5)

    def stop_workers(self) -> None:
        for worker in self.workers:
            self.stack.stop_process(worker)
        self.workers.clear()

    def stop(self) -> None:
        """Stop everything and drop both databases: the disk is shared."""
        self.stop_workers()
        self.stack.stop()
        self.receiver.stop()
        self.engine.dispose()
        for database_url in (self.bookings_url, self.prefect_url):
            postgres.drop_database(database_url.rsplit("/", 1)[1])

    # -- bookings ------------------------------------------------------------------------

    def dispatcher(self, arrangement: str) -> PostCommitDispatcher:
        settings = Settings(
            database_url=self.bookings_url,
            prefect_api_url=self.stack.api_url,
            dispatch_mode=arrangement,  # type: ignore[arg-type]
        )
        return PostCommitDispatcher(engine=self.engine, settings=settings)

    def book(self, dispatcher: PostCommitDispatcher) -> tuple[str, str, float]:
        """One booking through create_booking; (uid, event id, commit time)."""
        self._count += 1
        request = booking_path.request(self.event_type_id, self._count)
        with Session(self.engine) as session:
            result = create_booking(request, session=session, handoff=dispatcher)
        committed = time.time()
        assert result.event_id is not None
        return result.uid, result.event_id, committed

    # -- Prefect's database, read directly -----------------------------------------------

    def _prefect_sql(self, query: str, params: tuple) -> list[tuple]:
        dsn = self.prefect_url.replace("postgresql+asyncpg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            return conn.execute(query, params).fetchall()

    # Prefect indexes idempotency keys only with their flow, (flow_id, idempotency_key):
    # without `flow_id` a lookup by key reads the whole index, and on a long history this
    # once-a-second poll was most of PostgreSQL's CPU in a burst.
    BY_KEY = "flow_id IN (SELECT id FROM flow) AND idempotency_key = ANY(%s)"

    def wait_final(self, keys: list[str], timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ((done,),) = self._prefect_sql(
                f"SELECT count(*) FROM flow_run WHERE {self.BY_KEY} AND state_type::text = ANY(%s)",
                (keys, [state.value for state in TERMINAL_STATES]),
            )
            if done == len(keys):
                return
            time.sleep(1)
        raise RuntimeError(f"runs not final after {timeout:.0f} s")

    def runs(self, keys: list[str]) -> list[tuple]:
        return self._prefect_sql(
            f"SELECT state_type::text, created, start_time, end_time FROM flow_run"
            f" WHERE {self.BY_KEY}",
            (keys,),
        )

    # -- scenarios -----------------------------------------------------------------------

    def warm_up(self, arrangement: str) -> None:
        with self.dispatcher(arrangement) as dispatcher:
            booked = [self.book(dispatcher) for _ in range(2)]
            dispatcher.drain(60)
        self.wait_final(self.keys(arrangement, [event for _, event, _ in booked]))

    @staticmethod
    def keys(arrangement: str, event_ids: list[str]) -> list[str]:
        return [
            idempotency_key(event_id, target)
            for event_id in event_ids
            for target in ARRANGEMENTS[arrangement]
        ]

    def paced(self, arrangement: str, count: int, pace: float) -> Scenario:
        scenario = Scenario("paced", arrangement, len(self.workers), count)
        booked = []
        with self.dispatcher(arrangement) as dispatcher:
            before = self.meter.snapshot()
            started = time.time()
            for i in range(count):
                slot = started + i * pace
                time.sleep(max(0.0, slot - time.time()))
                uid, event_id, committed = self.book(dispatcher)
                booked.append((uid, event_id, committed))
                while (seen := self.receiver.seen(uid)) is None and time.time() < slot + 60:
                    time.sleep(0.02)
                if seen is not None:
                    scenario.latencies.append(seen - committed)
            keys = self.keys(arrangement, [event for _, event, _ in booked])
            self.wait_final(keys)
            scenario.cpu = self.meter.since(before)
        self._finish(scenario, booked, keys)
        return scenario

    def burst(self, arrangement: str, count: int) -> Scenario:
        scenario = Scenario("burst", arrangement, len(self.workers), count)
        with self.dispatcher(arrangement) as dispatcher:
            before = self.meter.snapshot()
            booked = [self.book(dispatcher) for _ in range(count)]
            keys = self.keys(arrangement, [event for _, event, _ in booked])
            self.wait_final(keys)
            scenario.cpu = self.meter.since(before)
        deadline = time.time() + 30  # deliveries land before their runs end; allow a moment
        while time.time() < deadline and any(self.receiver.seen(uid) is None for uid, *_ in booked):
            time.sleep(0.2)
        scenario.latencies = [
            seen - committed
            for uid, _, committed in booked
            if (seen := self.receiver.seen(uid)) is not None
        ]
        self._finish(scenario, booked, keys)
        return scenario

    def _finish(self, scenario: Scenario, booked: list, keys: list[str]) -> None:
        rows = self.runs(keys)
        scenario.states = dict(Counter(state for state, *_ in rows))
        scenario.waits = [
            (start - created).total_seconds() for _, created, start, _ in rows if start
        ]
        scenario.durations = [
            (end - start).total_seconds() for *_, start, end in rows if end and start
        ]
        first_commit = min(committed for *_, committed in booked)
        last_end = max(end for *_, end in rows if end).timestamp()
        scenario.seconds = last_end - first_commit
        scenario.undelivered = sum(self.receiver.seen(uid) is None for uid, *_ in booked)
        scenario.duplicates = self.receiver.duplicates()

    def idle(self, minutes: float) -> dict[str, float]:
        before = self.meter.snapshot()
        time.sleep(minutes * 60)
        spent = self.meter.since(before)
        return {name: value / minutes for name, value in spent.items()}

    def runs_ended_since(self, since: datetime) -> dict[str, int]:
        """Flow runs that ended after `since`, by deployment name (the periodic flows, idle)."""
        return dict(
            self._prefect_sql(
                "SELECT d.name, count(*) FROM flow_run r JOIN deployment d"
                " ON d.id = r.deployment_id WHERE r.end_time > %s GROUP BY d.name",
                (since,),
            )
        )


def machine() -> dict[str, Any]:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    postgres = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    import prefect

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model,
        "cores": len([c for c in Path("/sys/devices/system/cpu").glob("cpu[0-9]*")]),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "postgresql": postgres,
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
        ).stdout.strip(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    # Prefect's background-task queue (docket) in Redis instead of in the server's own
    # memory: its in-memory stand-in runs Redis' Lua scripts in Python, at a CPU cost.
    flush_redis(args.docket_url, databases=1)
    bench = Bench(tmp, server_env={"PREFECT_SERVER_DOCKET_URL": args.docket_url})
    results: dict[str, Any] = {
        "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "scenarios": [],
    }
    bench.start()
    try:
        for arrangement in args.arrangements:
            bench.start_workers(1)
            bench.warm_up(arrangement)
            paced = bench.paced(arrangement, args.paced, args.pace)
            print(_line(paced), flush=True)
            burst = bench.burst(arrangement, args.burst)
            print(_line(burst), flush=True)
            results["scenarios"] += [_row(paced), _row(burst)]
            bench.stop_workers()
        bench.start_workers(2)
        bench.warm_up(args.scale_arrangement)
        scaled = bench.burst(args.scale_arrangement, args.burst)
        results["scenarios"].append(_row(scaled))
        print(_line(scaled), flush=True)
        bench.stop_workers()
        bench.start_workers(1)
        time.sleep(5)
        idle_from = datetime.now(UTC)
        results["idle_per_minute"] = bench.idle(args.idle_minutes)
        results["idle_runs"] = bench.runs_ended_since(idle_from)
        print(f"idle, per minute: {_fmt(results['idle_per_minute'])}", flush=True)
        bench.stop_workers()
        if args.scale_out_redis:
            results["scenarios"].append(_row(scaled_out(args, tmp / "scaled")))
            print(_line_row(results["scenarios"][-1]), flush=True)
        results["booking_path"] = {
            kind: booking_path.measure(
                booking_path.new_database(kind, tmp), bench.stack.api_url, args.booking_path_n
            )
            for kind in ("postgresql", "sqlite")
        }
        for kind, rows in results["booking_path"].items():
            live = rows["create+live"]
            print(
                f"booking path {kind}: create+live p50 x{live['p50_ratio']:.2f},"
                f" p99 x{live['p99_ratio']:.2f} of the floor",
                flush=True,
            )
    finally:
        bench.stop()
    if args.requests_n:
        from bench.requests import count

        results["requests"] = count(
            argparse.Namespace(n=args.requests_n, pace=3.0, arrangement=args.scale_arrangement)
        )
        print(f"requests per booking: {results['requests']['requests_per_booking']:.1f}")
    return results


def scaled_out(args: argparse.Namespace, tmp: Path) -> Scenario:
    """A burst with two workers against Prefect's scaled-out server: two API workers, the
    services in their own process, messaging in Redis."""
    flush_redis(args.scale_out_redis)
    bench = Bench(tmp, server_env=scale_out_env(args.scale_out_redis), scale_out=True)
    bench.start()
    try:
        bench.start_workers(2)
        bench.warm_up(args.scale_arrangement)
        scenario = bench.burst(args.scale_arrangement, args.burst)
        scenario.name = "burst, server scaled out"
        return scenario
    finally:
        bench.stop()


def _line_row(row: dict[str, Any]) -> str:
    return (
        f"{row['name']} {row['arrangement']} x{row['workers']} worker(s): "
        f"{row['per_minute']:.1f}/min, CPU per booking: {_fmt(row['cpu_per_booking'])},"
        f" states {row['states']}, undelivered {row['undelivered']}"
    )


def _row(scenario: Scenario) -> dict[str, Any]:
    row = asdict(scenario)
    row["per_minute"] = scenario.per_minute
    row["cpu_per_booking"] = scenario.cpu_per_booking()
    return row


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in values.items())


def _line(s: Scenario) -> str:
    return (
        f"{s.name} {s.arrangement} x{s.workers} worker(s), {s.bookings} bookings:"
        f" {s.per_minute:.1f}/min, latency p50 {pct(s.latencies, 50):.2f} s"
        f" p95 {pct(s.latencies, 95):.2f} s, CPU per booking: {_fmt(s.cpu_per_booking())},"
        f" states {s.states}, undelivered {s.undelivered}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paced", type=int, default=20, help="bookings in the paced case")
    parser.add_argument("--pace", type=float, default=5.0, help="seconds between paced bookings")
    parser.add_argument("--burst", type=int, default=60, help="bookings in a burst")
    parser.add_argument("--idle-minutes", type=float, default=10.0)
    parser.add_argument("--booking-path-n", type=int, default=300)
    parser.add_argument(
        "--requests-n",
        type=int,
        default=10,
        help="bookings whose Prefect API requests, logs and events are counted (0: skip)",
    )
    parser.add_argument(
        "--arrangements", nargs="+", default=["bundled", "per-concern"], choices=list(ARRANGEMENTS)
    )
    parser.add_argument("--scale-arrangement", default="bundled", choices=list(ARRANGEMENTS))
    parser.add_argument(
        "--docket-url",
        default="redis://127.0.0.1:6379/9",
        help="PREFECT_SERVER_DOCKET_URL of the server (memory:// for Prefect's default)",
    )
    parser.add_argument(
        "--scale-out-redis",
        default="redis://127.0.0.1:6379/10",
        help="Redis for the scaled-out server's burst (empty: skip that case); uses 2 databases",
    )
    parser.add_argument("--save", type=Path, help="write the raw figures here (JSON)")
    parser.add_argument(
        "--write-doc", action="store_true", help="rewrite the results in docs/performance.md"
    )
    args = parser.parse_args()
    results = run(args)
    results["command"] = "python -m bench.pipeline " + shlex.join(sys.argv[1:])
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(results, indent=1, default=str))
    if args.write_doc:
        from bench.report import write_doc

        write_doc(results, results["command"])


if __name__ == "__main__":
    main()

"""Does the cost stay flat as history grows? The same measurements on empty databases and on
databases holding the history of a million bookings, in one run.

    python -m bench.history [--bookings 1000000] [--event-bookings 150000] [--paced 20]
                            [--pace 3] [--burst 60] [--write-doc]

The stack of `python -m bench.pipeline` (a Prefect server and a bookings database on
PostgreSQL, one `python -m worker`, the periodic flows on their schedules). Then:

1. empty: paced bookings (commit -> BOOKING_CREATED), a burst (CPU-seconds per booking),
   five outbox-relay and five deliver-due-work runs with nothing due (their run time, from
   Prefect's start and end times), and the operators' queries behind `booking outbox status`,
   `booking deliveries list --booking` and `booking deliveries list --failed --since 1h`
   (in-process, median of five).
2. fill: the burst's bookings are the template. Every row they left in both databases is
   copied, in bulk SQL, until there are --bookings: in Prefect, flow runs, their states, task
   runs and their states, logs, artifacts; in the bookings database, bookings, attendees,
   hosts, outbox events, delivery attempts and due rows, each copy with fresh ids and uids
   and its times moved back (the copies spread over the days --bookings take at one booking
   a second). Events (and their resources), the largest by far, are copied for the newest
   --event-bookings only: Prefect keeps events 7 days (`PREFECT_EVENTS_RETENTION_PERIOD`,
   README), and they would not fit this disk for every booking. Prefect's tables are loaded
   as a bulk load is: their indexes that back no constraint are dropped for the copy and
   built again after it (the same schema, its indexes freshly built). Then VACUUM
   (ANALYZE), which autovacuum would run after such a load, so it does not run during a
   measure. The server and worker are stopped for the fill, as for a maintenance window,
   and the periodic deployments paused: left on, their schedules pile up a run a minute
   that then run one by one (1,067 s to catch up after a 40-minute fill at a million).
3. full: the server and a worker started again, the periodic deployments resumed, and once
   nothing of theirs is overdue (`catch_up_seconds`), step 1 again. Each measure starts
   from a fresh worker, warmed by two bookings.

Targets, full against empty: CPU per booking <= 1.15x; paced p50 <= 1.15x; a relay and a
due-work pass each <= 1.5x and <= 1 s; each operator query <= 300 ms. The databases are
dropped at the end.
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import Session

from bench.pipeline import Bench, machine, pct
from bench.report import replace_section, say_verdicts
from booking.settings import PROJECT_ROOT
from booking.timeutil import utcnow
from cli.admin import deliveries, outbox_status
from deployments.names import DELIVER_DUE_WORK, OUTBOX_RELAY
from local import postgres
from local.stack import flush_redis

DOC = PROJECT_ROOT / "docs" / "performance.md"
PERF = PROJECT_ROOT / "docs" / "perf"
SAVED = Path(tempfile.gettempdir()) / "history.json"  # each run's results, for --from-json
COPIES_PER_STATEMENT = 200
TARGETS = {"cpu": 1.15, "paced_p50": 1.15, "pass": 1.5, "pass_seconds": 1.0, "query_ms": 300}


# -- measuring -------------------------------------------------------------------------------


def timed_ms(call, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def pass_seconds(bench: Bench, deployment: str, repeat: int = 5) -> float:
    """Median run time (Prefect's start to end) of `repeat` runs of `deployment`, one at a
    time."""
    times = []
    with (
        temporary_settings({PREFECT_API_URL: bench.stack.api_url}),
        SyncPrefectClient(bench.stack.api_url) as client,
    ):
        for _ in range(repeat):
            started = run_deployment(deployment, timeout=300)
            run = client.read_flow_run(started.id)
            assert run.state and run.state.is_completed(), (deployment, run.state)
            assert run.start_time and run.end_time
            times.append((run.end_time - run.start_time).total_seconds())
    return statistics.median(times)


def catch_up_seconds(bench: Bench, timeout: float = 1800) -> float:
    """Waits until the periodic flows have run what their schedules piled up while no worker
    ran (the fill, as a worker outage would): one run at a time each, as their concurrency
    limit allows. Returns how long that took."""
    periodic = DeploymentFilter(
        name=DeploymentFilterName(any_=[DELIVER_DUE_WORK.name, OUTBOX_RELAY.name])
    )
    started = time.monotonic()
    with SyncPrefectClient(bench.stack.api_url) as client:
        while True:
            due = FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
                ),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=utcnow()),
            )
            waiting = client.count_flow_runs(flow_run_filter=due, deployment_filter=periodic)
            if not waiting:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{waiting} periodic runs still waiting after {timeout:.0f} s")
            time.sleep(5)


def measure(bench: Bench, args: argparse.Namespace, uid: str, result: dict[str, Any]) -> None:
    """Fills `result` as each figure comes, so a run that stops keeps the ones before."""
    paced = bench.paced("bundled", args.paced, args.pace)
    result.update(paced_p50=pct(paced.latencies, 50), paced_p95=pct(paced.latencies, 95))
    burst = bench.burst("bundled", args.burst)
    result.update(
        cpu_per_booking=burst.cpu_per_booking(),
        burst_per_minute=burst.per_minute,
        burst_states=burst.states,
        undelivered=paced.undelivered + burst.undelivered,
    )
    print(f"  {json.dumps(result)}", flush=True)

    def status() -> None:
        with Session(bench.engine) as session:
            outbox_status(session)

    def by_booking() -> None:
        with Session(bench.engine) as session:
            deliveries(session, booking_uid=uid)

    def failed_last_hour() -> None:
        with Session(bench.engine) as session:
            deliveries(session, failed=True, since=utcnow() - timedelta(hours=1))

    result["query_ms"] = {
        "outbox status": timed_ms(status),
        "deliveries list --booking": timed_ms(by_booking),
        "deliveries list --failed --since 1h": timed_ms(failed_last_hour),
    }
    result["relay_pass_s"] = pass_seconds(bench, OUTBOX_RELAY.full_name)
    result["due_work_pass_s"] = pass_seconds(bench, DELIVER_DUE_WORK.full_name)
    print(f"  {json.dumps(result)}", flush=True)


# What the operators' queries run (as SQLAlchemy writes them, cli/admin.py), for EXPLAIN.
OPERATOR_SQL = {
    "outbox status: pending": "SELECT count(*) FROM outboxevent WHERE dispatched_at IS NULL",
    "outbox status: running": "SELECT count(*) FROM outboxevent"
    " WHERE dispatched_at IS NOT NULL AND finished_at IS NULL",
    "outbox status: not completed": "SELECT count(*) FROM outboxevent WHERE finished_at IS"
    " NOT NULL AND outcome NOT IN ('Completed', 'not tracked')",
    "outbox status: oldest pending": "SELECT min(created_at) FROM outboxevent"
    " WHERE dispatched_at IS NULL",
    "deliveries list --booking": "SELECT * FROM webhookdelivery WHERE booking_uid = %(uid)s"
    " ORDER BY id",
    "deliveries list --failed --since 1h": "SELECT * FROM webhookdelivery"
    " WHERE created_at >= now() - interval '1 hour' ORDER BY id",
}


def plans(bench: Bench, uid: str) -> dict[str, str]:
    dsn = bench.bookings_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        return {
            name: "\n".join(
                row[0]
                for row in conn.execute(
                    f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", {"uid": uid} if "%(" in sql else None
                )
            )
            for name, sql in OPERATOR_SQL.items()
        }


# -- filling ---------------------------------------------------------------------------------


def new_uuid(column: str) -> str:
    """The copy's id for a template id: the same in every table that refers to it."""
    return f"md5({column}::text || ':' || g)::uuid"


def new_uuid_in(column: str) -> str:
    """A resource id (`prefect.flow-run.<uuid>`) pointing at the copy of what it named."""
    return (
        f"CASE WHEN {column} ~ '[.][0-9a-f-]{{36}}$' THEN left({column}, length({column}) - 36)"
        f" || md5(right({column}, 36) || ':' || g)::uuid ELSE {column} END"
    )


def new_uid(column: str) -> str:
    return f"left(md5({column} || ':' || g), 20)"


class Filler:
    """Copies template rows in bulk: `INSERT ... SELECT` from the table itself, once per
    copy number g, with the given column expressions; every other timestamp moved back by
    g steps."""

    def __init__(self, dsn: str, step_seconds: float):
        self.conn = psycopg.connect(dsn, autocommit=True)
        # A bulk load: references are made consistent by construction (each copy's ids are
        # derived the same way in every table), so the per-row foreign-key checks, which
        # would also refuse a run and its states referring to each other, are off.
        self.conn.execute("SET session_replication_role = replica")
        self.step = step_seconds

    def columns(self, table: str) -> list[tuple[str, str]]:
        return self.conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = %s AND table_schema = 'public' ORDER BY ordinal_position",
            (table,),
        ).fetchall()

    def copy(self, table: str, where: str, copies: range, overrides: dict[str, str]) -> int:
        names, exprs = [], []
        for name, data_type in self.columns(table):
            names.append(f'"{name}"')
            if name in overrides:
                exprs.append(overrides[name])
            elif data_type.startswith("timestamp"):
                exprs.append(f"t.\"{name}\" - g * interval '{self.step} seconds'")
            else:
                exprs.append(f't."{name}"')
        sql = (
            f'INSERT INTO "{table}" ({", ".join(names)}) SELECT {", ".join(exprs)}'
            f' FROM "{table}" t CROSS JOIN generate_series(%s::int, %s::int) g WHERE {where}'
        )
        inserted = 0
        for first in range(copies.start, copies.stop, COPIES_PER_STATEMENT):
            last = min(first + COPIES_PER_STATEMENT, copies.stop) - 1
            inserted += self.conn.execute(sql, (first, last)).rowcount
        return inserted

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        cursor = self.conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []

    @contextmanager
    def indexes_rebuilt(self, tables: list[str]) -> Iterator[None]:
        """Drops the tables' indexes that back no constraint, then builds them again once
        the rows are in: one sorted build instead of millions of random inserts into large
        B-trees. The schema afterwards is the same, its indexes freshly built."""
        saved = self.sql(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)"
            " FROM pg_index i WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS"
            " (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            (tables,),
        )
        for name, _ in saved:
            self.sql(f"DROP INDEX {name}")
        yield
        started = time.monotonic()
        self.sql("SET maintenance_work_mem = '1GB'")
        for _, definition in saved:
            self.sql(definition)
        print(f"  {len(saved)} indexes built ({time.monotonic() - started:.0f} s)", flush=True)


def fill_prefect(dsn: str, keys: list[str], copies: int, event_copies: int, step: float) -> dict:
    f = Filler(dsn, step)
    f.sql("DROP TABLE IF EXISTS tpl_run")
    f.sql(
        "CREATE TABLE tpl_run AS SELECT id, parameters->>'booking_uid' AS uid FROM flow_run"
        " WHERE idempotency_key = ANY(%s)",
        (keys,),
    )
    templates = {
        "tpl_task": "SELECT id FROM task_run WHERE flow_run_id IN (SELECT id FROM tpl_run)",
        "tpl_run_state": "SELECT id FROM flow_run_state WHERE flow_run_id IN"
        " (SELECT id FROM tpl_run)",
        "tpl_task_state": "SELECT id FROM task_run_state WHERE task_run_id IN"
        " (SELECT id FROM task_run WHERE flow_run_id IN (SELECT id FROM tpl_run))",
        "tpl_log": "SELECT id FROM log WHERE flow_run_id IN (SELECT id FROM tpl_run)",
        "tpl_artifact": "SELECT id FROM artifact WHERE flow_run_id IN (SELECT id FROM tpl_run)",
        # The events of the template runs: those naming one of their runs as a resource.
        "tpl_event": "SELECT DISTINCT r.event_id AS id FROM event_resources r"
        " WHERE right(r.resource_id, 36) IN (SELECT id::text FROM tpl_run UNION ALL"
        " SELECT id::text FROM task_run WHERE flow_run_id IN (SELECT id FROM tpl_run))",
    }
    for name, query in templates.items():
        f.sql(f"DROP TABLE IF EXISTS {name}")
        f.sql(f"CREATE TABLE {name} AS {query}")
    f.sql(
        "CREATE TABLE tpl_event_resource AS SELECT id FROM event_resources"
        " WHERE event_id IN (SELECT id FROM tpl_event)"
    )
    with f.indexes_rebuilt(list(PREFECT_TABLES)):
        counts = copy_prefect(f, copies, event_copies)
    for name in ("tpl_run", *templates, "tpl_event_resource"):
        f.sql(f"DROP TABLE {name}")
    f.sql("VACUUM (ANALYZE)")  # what autovacuum does after a load, not during a measure
    f.conn.close()
    return counts


PREFECT_TABLES = (
    "flow_run",
    "flow_run_state",
    "task_run",
    "task_run_state",
    "log",
    "artifact",
    "events",
    "event_resources",
)


def copy_prefect(f: Filler, copies: int, event_copies: int) -> dict[str, int]:
    every = range(1, copies + 1)
    counts: dict[str, int] = {}
    uid_of = "(SELECT uid FROM tpl_run r WHERE r.id = t.id)"
    started = time.monotonic()
    counts["flow_run"] = f.copy(
        "flow_run",
        "t.id IN (SELECT id FROM tpl_run)",
        every,
        {
            "id": new_uuid("t.id"),
            "state_id": new_uuid("t.state_id"),
            "name": f"replace(t.name, {uid_of}, {new_uid(uid_of)})",
            "idempotency_key": "t.idempotency_key || '-h' || g",
            "parameters": f"replace(t.parameters::text, {uid_of}, {new_uid(uid_of)})::jsonb",
            "tags": f"replace(t.tags::text, {uid_of}, {new_uid(uid_of)})::jsonb",
        },
    )
    print(f"  flow_run {counts['flow_run']:,} ({time.monotonic() - started:.0f} s)", flush=True)
    counts["flow_run_state"] = f.copy(
        "flow_run_state",
        "t.id IN (SELECT id FROM tpl_run_state)",
        every,
        {"id": new_uuid("t.id"), "flow_run_id": new_uuid("t.flow_run_id")},
    )
    counts["task_run"] = f.copy(
        "task_run",
        "t.id IN (SELECT id FROM tpl_task)",
        every,
        {
            "id": new_uuid("t.id"),
            "flow_run_id": new_uuid("t.flow_run_id"),
            "state_id": new_uuid("t.state_id"),
        },
    )
    counts["task_run_state"] = f.copy(
        "task_run_state",
        "t.id IN (SELECT id FROM tpl_task_state)",
        every,
        {"id": new_uuid("t.id"), "task_run_id": new_uuid("t.task_run_id")},
    )
    print(f"  runs and states ({time.monotonic() - started:.0f} s)", flush=True)
    counts["log"] = f.copy(
        "log",
        "t.id IN (SELECT id FROM tpl_log)",
        every,
        {
            "id": "gen_random_uuid()",
            "flow_run_id": new_uuid("t.flow_run_id"),
            "task_run_id": f"CASE WHEN t.task_run_id IS NULL THEN NULL ELSE"
            f" {new_uuid('t.task_run_id')} END",
        },
    )
    counts["artifact"] = f.copy(
        "artifact",
        "t.id IN (SELECT id FROM tpl_artifact)",
        every,
        {
            "id": "gen_random_uuid()",
            "flow_run_id": new_uuid("t.flow_run_id"),
            "task_run_id": f"CASE WHEN t.task_run_id IS NULL THEN NULL ELSE"
            f" {new_uuid('t.task_run_id')} END",
        },
    )
    print(f"  logs and artifacts ({time.monotonic() - started:.0f} s)", flush=True)
    newest = range(1, event_copies + 1)
    counts["events"] = f.copy(
        "events",
        "t.id IN (SELECT id FROM tpl_event)",
        newest,
        {
            "id": new_uuid("t.id"),
            "resource_id": new_uuid_in("t.resource_id"),
            "follows": "NULL",
        },
    )
    counts["event_resources"] = f.copy(
        "event_resources",
        "t.id IN (SELECT id FROM tpl_event_resource)",
        newest,
        {
            "id": "gen_random_uuid()",
            "event_id": new_uuid("t.event_id"),
            "resource_id": new_uuid_in("t.resource_id"),
        },
    )
    print(f"  events ({time.monotonic() - started:.0f} s)", flush=True)
    return counts


# Bookings-database tables, in the order their references need, and how each refers to a
# booking: copies get ids shifted by a per-table stride, and uids rewritten.
BOOKING_TABLES = {
    "booking": "t.id",
    "attendee": "t.booking_id",
    "bookinghost": "t.booking_id",
    "outboxevent": "(SELECT b.id FROM booking b WHERE b.uid = t.booking_uid)",
    "webhookdelivery": "(SELECT b.id FROM booking b WHERE b.uid = t.booking_uid)",
    "scheduledtrigger": "t.booking_id",
    "webhookredelivery": "t.booking_id",
    "workflowreminder": "t.booking_id",
}


def fill_bookings(dsn: str, uids: list[str], copies: int, step: float) -> dict:
    f = Filler(dsn, step)
    f.sql("DROP TABLE IF EXISTS tpl_base")
    f.sql("CREATE TABLE tpl_base AS SELECT id FROM booking WHERE uid = ANY(%s)", (uids,))
    strides = {}
    for table, booking_of in BOOKING_TABLES.items():
        # Which rows are the template's, fixed before any copy is added.
        f.sql(f"DROP TABLE IF EXISTS tpl_{table}")
        f.sql(
            f'CREATE TABLE tpl_{table} AS SELECT t.id FROM "{table}" t'
            f" WHERE {booking_of} IN (SELECT id FROM tpl_base)"
        )
        if dict(f.columns(table))["id"] == "integer":  # outboxevent's id is a uuid in text
            strides[table] = f.sql(f'SELECT coalesce(max(id), 0) + 1 FROM "{table}"')[0][0]
    every = range(1, copies + 1)
    counts = {}
    started = time.monotonic()
    for table in BOOKING_TABLES:
        columns = dict(f.columns(table))
        overrides = {"id": f"t.id + g * {strides[table]}" if table in strides else ""}
        if "booking_id" in columns:
            overrides["booking_id"] = f"t.booking_id + g * {strides['booking']}"
        if "uid" in columns:
            overrides["uid"] = new_uid("t.uid")
        if "booking_uid" in columns:
            overrides["booking_uid"] = new_uid("t.booking_uid")
        for unique_text in ("message_id", "dedupe_key"):
            if unique_text in columns:
                overrides[unique_text] = f"t.{unique_text} || '-h' || g"
        if table == "outboxevent":  # its id is a uuid in text
            overrides["id"] = f"{new_uuid('t.id')}::text"
        if table == "booking":
            overrides["from_reschedule"] = "NULL"
        if "due_at" in columns:
            # A copy's due row whose time has passed was sent then, as in a real history
            # (else the first sweep would find a year of reminders due).
            moved = f"t.due_at - g * interval '{step} seconds'"
            overrides["status"] = f"CASE WHEN {moved} < now() THEN 'SENT' ELSE t.status END"
            overrides["sent_at"] = f"CASE WHEN {moved} < now() THEN {moved} ELSE NULL END"
        counts[table] = f.copy(table, f"t.id IN (SELECT id FROM tpl_{table})", every, overrides)
        print(f"  {table} {counts[table]:,} ({time.monotonic() - started:.0f} s)", flush=True)
        if table != "outboxevent" and counts[table]:
            f.sql(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'),"
                f' (SELECT max(id) FROM "{table}"))'
            )
    for table in ("base", *BOOKING_TABLES):
        f.sql(f"DROP TABLE IF EXISTS tpl_{table}")
    f.sql("VACUUM (ANALYZE)")  # what autovacuum does after a load, not during a measure
    f.conn.close()
    return counts


def database_sizes(bench: Bench) -> dict[str, str]:
    admin = postgres.admin(postgres.DEFAULT_DSN)
    sizes = {}
    for label, url in (("prefect", bench.prefect_url), ("bookings", bench.bookings_url)):
        name = url.rsplit("/", 1)[1]
        ((size,),) = admin.execute(
            "SELECT pg_size_pretty(pg_database_size(%s))", (name,)
        ).fetchall()
        sizes[label] = size
    admin.close()
    return sizes


# -- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    free = shutil.disk_usage("/").free / 2**30
    print(f"disk free: {free:.0f} GiB", flush=True)
    if free < args.min_free_gib:
        sys.exit(f"only {free:.0f} GiB free; the fill needs room (--min-free-gib)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-history-"))
    flush_redis(args.docket_url, databases=1)
    bench = Bench(tmp, server_env={"PREFECT_SERVER_DOCKET_URL": args.docket_url})
    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    try:
        bench.start()
        bench.start_workers(1)
        bench.warm_up("bundled")
        # The template: a burst's bookings, every row they leave behind.
        with bench.dispatcher("bundled") as dispatcher:
            booked = [bench.book(dispatcher) for _ in range(args.template)]
        keys = bench.keys("bundled", [event for _, event, _ in booked])
        bench.wait_final(keys)
        time.sleep(10)  # their events and logs reach the database a moment after
        uids = [uid for uid, *_ in booked]
        # Each measure starts from a fresh worker, warmed the same way.
        bench.stop_workers()
        bench.start_workers(1)
        bench.warm_up("bundled")
        print("empty:", flush=True)
        measure(bench, args, uids[0], results.setdefault("empty", {}))
        copies = -(-args.bookings // args.template) - 1
        event_copies = -(-args.event_bookings // args.template) - 1
        step = args.template  # seconds: one booking a second
        print(f"fill: {copies:,} copies of {args.template} bookings", flush=True)
        started = time.monotonic()
        # A quiet machine for the fill, and a bulk load no one else writes into: with the
        # indexes that back no constraint dropped, a running server's upserts on them fail
        # and its services' queries of flow_run scan the table. Started again after it.
        bench.pause_periodic()  # nothing piles up to run one by one afterwards
        bench.stop_workers()
        bench.stack.stop()
        results["filled"] = {
            "prefect": fill_prefect(
                bench.prefect_url.replace("postgresql+asyncpg://", "postgresql://"),
                keys,
                copies,
                event_copies,
                step,
            ),
            "bookings": fill_bookings(
                bench.bookings_url.replace("postgresql+psycopg://", "postgresql://"),
                uids,
                copies,
                step,
            ),
            "seconds": round(time.monotonic() - started),
            "sizes": database_sizes(bench),
            "disk_free_gib": round(shutil.disk_usage("/").free / 2**30),
        }
        print(f"  {json.dumps(results['filled'])}", flush=True)
        bench.stack.start()
        bench.pause_periodic(False)
        bench.start_workers(1)
        results["filled"]["catch_up_seconds"] = round(catch_up_seconds(bench))
        print(f"  caught up in {results['filled']['catch_up_seconds']} s", flush=True)
        bench.warm_up("bundled")
        print("full:", flush=True)
        measure(bench, args, uids[0], results.setdefault("full", {}))
        results["plans"] = plans(bench, uids[0])
        for name, plan in results["plans"].items():
            print(f"{name}:\n{plan}", flush=True)
    finally:
        SAVED.write_text(json.dumps(results, default=str))  # what was measured, if it stopped
        bench.stop()  # drops both databases
    return results


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    empty, full = results["empty"], results["full"]
    rows = []
    cpu_e, cpu_f = empty["cpu_per_booking"]["machine"], full["cpu_per_booking"]["machine"]
    rows.append(
        (
            "CPU-seconds per booking (burst, whole machine)",
            f"{cpu_f:.2f} vs {cpu_e:.2f} ({cpu_f / cpu_e:.2f}x)",
            f"<= {TARGETS['cpu']}x",
            cpu_f / cpu_e <= TARGETS["cpu"],
        )
    )
    p_e, p_f = empty["paced_p50"], full["paced_p50"]
    rows.append(
        (
            "paced commit -> first webhook, p50",
            f"{p_f:.2f} vs {p_e:.2f} s ({p_f / p_e:.2f}x)",
            f"<= {TARGETS['paced_p50']}x",
            p_f / p_e <= TARGETS["paced_p50"],
        )
    )
    for key, label in (
        ("relay_pass_s", "outbox-relay pass"),
        ("due_work_pass_s", "deliver-due-work pass, nothing due"),
    ):
        e, f = empty[key], full[key]
        rows.append(
            (
                f"{label}, run time",
                f"{f:.2f} vs {e:.2f} s ({f / e:.2f}x)",
                f"<= {TARGETS['pass']}x and <= {TARGETS['pass_seconds']:g} s",
                f / e <= TARGETS["pass"] and f <= TARGETS["pass_seconds"],
            )
        )
    for name, ms in full["query_ms"].items():
        rows.append(
            (
                f"`booking {name}` query",
                f"{ms:.1f} ms (empty {empty['query_ms'][name]:.1f} ms)",
                f"<= {TARGETS['query_ms']} ms",
                ms <= TARGETS["query_ms"],
            )
        )
    lost = empty["undelivered"] + full["undelivered"]
    rows.append(("bookings undelivered", str(lost), "0", lost == 0))
    return rows


def markdown(results: dict[str, Any]) -> str:
    args, filled = results["args"], results["filled"]
    counts = {**filled["prefect"], **filled["bookings"]}
    lines = [
        "## Cost as history grows",
        "",
        f"`python -m bench.history --bookings {args['bookings']} --event-bookings"
        f" {args['event_bookings']} --write-doc` ({results['machine']['date']}, commit"
        f" {results['machine']['commit']}, alone on the machine). The same measurements on"
        " empty databases and after copying the rows of "
        f"{args['template']} real bookings until the databases hold {args['bookings']:,}"
        f" bookings' history, spread one a second ({filled['seconds']} s to fill; Prefect's"
        f" database {filled['sizes']['prefect']}, the bookings' {filled['sizes']['bookings']}).",
        "Rows copied: " + ", ".join(f"{table} {n:,}" for table, n in counts.items()) + ".",
        f"Events only for the newest {args['event_bookings']:,} bookings: Prefect keeps events"
        " 7 days (`PREFECT_EVENTS_RETENTION_PERIOD`), and all of them would not fit this"
        " machine's shared disk. Prefect's indexes that back no constraint were dropped for"
        " the copy and built again after it (a bulk load), so they are freshly built, not"
        " grown row by row. The server and worker were stopped for the fill, as for a"
        " maintenance window, and the periodic deployments paused, so nothing piled up."
        f" Disk left after the fill: {filled['disk_free_gib']} GiB.",
        "",
        "| measure | full vs empty | target | met |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else 'no'} |" for a, b, c, ok in verdicts(results)]
    lines.append("")
    return "\n".join(lines)


def write_doc(results: dict[str, Any]) -> None:
    PERF.mkdir(exist_ok=True)
    (PERF / "history.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    replace_section(DOC, "## Cost as history grows", markdown(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--event-bookings", type=int, default=150_000)
    parser.add_argument("--template", type=int, default=50, help="bookings copied")
    parser.add_argument("--paced", type=int, default=20)
    parser.add_argument("--pace", type=float, default=3.0)
    parser.add_argument("--burst", type=int, default=60)
    parser.add_argument("--min-free-gib", type=float, default=30)
    parser.add_argument("--docket-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--write-doc", action="store_true")
    parser.add_argument("--from-json", type=Path, help="report a saved run instead")
    args = parser.parse_args()
    results = json.loads(args.from_json.read_text()) if args.from_json else run(args)
    met = say_verdicts(verdicts(results))
    if args.write_doc:
        write_doc(results)
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()

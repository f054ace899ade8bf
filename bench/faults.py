"""Faults under load, on the PostgreSQL-backed stack of bench.pipeline: the long reliability
scenarios that do not fit in the test suite. Prints one line per case; docs/reliability.md
quotes them.

    python -m bench.faults [--burst 200] [--restart-bookings 30] [--outage-bookings 5]
                           [--cases burst pg-restart prefect-outage]

burst       N bookings at once, one worker: every booking delivered, none lost or doubled
            (counted by webhook-id at the receiver), no "database is locked" in any log.
pg-restart  PostgreSQL (the bookings' and Prefect's) restarted while a burst's runs and the
            due-work sweep run: every booking delivered once the runs recover or are
            finished by the relay.
prefect-outage  the Prefect server stopped while bookings commit, then started again: the
            seconds from its return until their runs exist and their webhooks arrive.
"""

import argparse
import subprocess
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from prefect.client.orchestration import SyncPrefectClient
from sqlmodel import Session, select

from bench.pipeline import Bench
from booking.models import OutboxEvent
from booking.settings import Settings
from booking.timeutil import utcnow
from deployments.names import ARRANGEMENTS, idempotency_key
from handoff.relay import finish_dispatched


def outcomes(bench: Bench) -> Counter:
    with Session(bench.engine) as session:
        return Counter(session.exec(select(OutboxEvent.outcome)).all())


def logs_say(bench: Bench, text: str) -> int:
    return sum(
        path.read_text(errors="replace").count(text) for path in bench.stack.home.glob("*.log")
    )


def finish(bench: Bench) -> None:
    """The relay's finishing pass, as its next scheduled run would do it."""
    settings = Settings(database_url=bench.bookings_url, prefect_api_url=bench.stack.api_url)
    with SyncPrefectClient(bench.stack.api_url) as client:
        finish_dispatched(
            engine=bench.engine, client=client, settings=settings,
            now=utcnow() + timedelta(minutes=10),
        )  # fmt: skip


def burst(tmp: Path, count: int) -> str:
    bench = Bench(tmp, server_env={})
    try:
        bench.start()
        bench.start_workers(1)
        bench.warm_up("bundled")
        scenario = bench.burst("bundled", count)
        finish(bench)
        return (
            f"burst {count}: {scenario.per_minute:.1f}/min, states {scenario.states}, "
            f"undelivered {scenario.undelivered}, delivered twice {scenario.duplicates}, "
            f"'database is locked' in logs {logs_say(bench, 'database is locked')}, "
            f"outbox outcomes {dict(outcomes(bench))}"
        )
    finally:
        bench.stop()


def pg_restart(tmp: Path, count: int) -> str:
    bench = Bench(tmp, server_env={})
    try:
        bench.start()
        bench.start_workers(1)
        bench.warm_up("bundled")
        booked: list[tuple[str, str, float]] = []
        with bench.dispatcher("bundled") as dispatcher:
            booker = threading.Thread(
                target=lambda: booked.extend(bench.book(dispatcher) for _ in range(count))
            )
            booker.start()
            booker.join()
            dispatcher.drain(60)
            time.sleep(2)  # runs are under way
            cluster = next(Path("/etc/postgresql").iterdir()).name
            restarted = subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"],
                capture_output=True,
                text=True,
            )
            restarted_at = time.monotonic()
        keys = [idempotency_key(event, ARRANGEMENTS["bundled"][0]) for _, event, _ in booked]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if all(bench.receiver.seen(uid) for uid, *_ in booked):
                break
            time.sleep(2)
        recovered = time.monotonic() - restarted_at
        bench.wait_final(keys, timeout=300)
        finish(bench)
        rows = bench.runs(keys)
        return (
            f"pg-restart during {count} bookings' runs (restart exit {restarted.returncode}): "
            f"all delivered after {recovered:.0f} s: "
            f"{all(bench.receiver.seen(uid) for uid, *_ in booked)}, "
            f"undelivered {sum(bench.receiver.seen(uid) is None for uid, *_ in booked)}, "
            f"delivered twice {bench.receiver.duplicates()}, "
            f"final states {dict(Counter(state for state, *_ in rows))}, "
            f"outbox outcomes {dict(outcomes(bench))}"
        )
    finally:
        bench.stop()


def prefect_outage(tmp: Path, count: int) -> str:
    """The Prefect server stopped, `count` bookings committed through one live dispatcher,
    the server started again on its port: how long after it answers are the events
    dispatched, and their webhooks delivered (the periodic relay paused: the dispatcher's own
    retry, not the relay's five-minute pass)."""
    bench = Bench(tmp, server_env={})
    try:
        bench.start()
        bench.start_workers(1)
        bench.warm_up("bundled")
        bench.pause_periodic()
        with bench.dispatcher("bundled") as dispatcher:
            (api,) = bench.stack._server_processes
            bench.stack.stop_process(api)
            bench.stack._server_processes.remove(api)
            booked = [bench.book(dispatcher) for _ in range(count)]
            dispatcher.drain(60)
            time.sleep(10)  # down a while
            bench.stack.start()
            back = time.monotonic()
            events = [event for _, event, _ in booked]
            dispatched = delivered = None
            while time.monotonic() - back < 300 and delivered is None:
                if dispatched is None:
                    with Session(bench.engine) as session:
                        rows = session.exec(
                            select(OutboxEvent.dispatched_at).where(
                                OutboxEvent.id.in_(events)  # type: ignore[union-attr]
                            )
                        ).all()
                    if all(rows):
                        dispatched = time.monotonic() - back
                if all(bench.receiver.seen(uid) is not None for uid, *_ in booked):
                    delivered = time.monotonic() - back
                time.sleep(0.2)
        return (
            f"prefect-outage {count}: after the server answered again, dispatched in "
            f"{dispatched and round(dispatched, 1)} s, delivered in "
            f"{delivered and round(delivered, 1)} s, delivered twice {bench.receiver.duplicates()}"
        )
    finally:
        bench.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--restart-bookings", type=int, default=30)
    parser.add_argument("--outage-bookings", type=int, default=5)
    parser.add_argument("--cases", nargs="+", default=["burst", "pg-restart", "prefect-outage"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        if "burst" in args.cases:
            print(burst(Path(tmp) / "burst", args.burst), flush=True)
        if "pg-restart" in args.cases:
            print(pg_restart(Path(tmp) / "restart", args.restart_bookings), flush=True)
        if "prefect-outage" in args.cases:
            print(prefect_outage(Path(tmp) / "outage", args.outage_bookings), flush=True)


if __name__ == "__main__":
    main()

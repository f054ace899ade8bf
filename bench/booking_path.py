"""What the booker waits for: create_booking with and without the post-commit hand-off.

    python -m bench.booking_path [--n 200] [--database sqlite|postgresql]

Compares, on one database, in one run:
  baseline      one transaction writing the booking and its attendee (no outbox, no hand-off)
  create        create_booking: validation + booking + attendee + host + outbox event
  create paced  the same, paced like the live case (idle gaps cool caches; fair comparison)
  create+live   create_booking handing off to a dispatcher on a real local Prefect server
  create+silent create_booking handing off to a Prefect API that never answers
and how long after commit the background dispatch had the flow run created (live server).
Medians in milliseconds; ratios against the baseline. The live case is paced (--rate) below
what one Prefect server creates per second; bursts beyond it queue and the relay catches up.
"""

import argparse
import socket
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlmodel import Session

from booking.db import make_engine, upgrade_schema
from booking.enums import BookingStatus
from booking.models import Attendee, Booking, EventType, OutboxEvent, User
from booking.service import create_booking
from booking.settings import Settings
from deployments.dispatch import PostCommitDispatcher
from deployments.local import LocalPrefect, free_port


def request(event_type_id: int, i: int) -> dict:
    start = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    return {
        "event_type_id": event_type_id,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "booker": {"name": "Bench", "email": f"b{i}@bench.example", "time_zone": "UTC"},
    }


def baseline(session: Session, event_type: EventType, host: User, i: int) -> None:
    start = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    booking = Booking(
        uid=uuid.uuid4().hex,
        event_type_id=event_type.id,
        user_id=host.id,
        title="bench",
        start_time=start,
        end_time=start + timedelta(minutes=30),
        status=BookingStatus.ACCEPTED,
    )
    session.add(booking)
    session.flush()
    session.add(Attendee(booking_id=booking.id, name="B", email="b@x.example", time_zone="UTC"))
    session.commit()


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(n: int, fn, pace: float = 0.0) -> list[float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - t0)
        time.sleep(pace)
    return samples


def database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}"
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def prefect_database() -> str:
    name = f"bench_prefect_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--rate", type=float, default=5.0, help="bookings per second in the create+live case"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    url = database(args.database, tmp)
    engine = make_engine(url)
    upgrade_schema(engine)
    # Prefect's own database on PostgreSQL: its SQLite backend locks under concurrent writes.
    stack = LocalPrefect(home=tmp / "prefect", port=free_port(), database_url=prefect_database())
    stack.start()
    stack.deploy_all()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1024)
    try:
        with Session(engine, expire_on_commit=False) as session:
            host = User(name="Bench Host", email="host@bench.example")
            session.add(host)
            session.commit()
            event_type = EventType(slug="b", title="Bench", owner_id=host.id)
            session.add(event_type)
            session.commit()
            base = Settings(database_url=url, prefect_api_url=stack.api_url)
            live = PostCommitDispatcher(engine=engine, settings=base)
            stalled = PostCommitDispatcher(
                engine=engine,
                settings=base.model_copy(
                    update={"prefect_api_url": f"http://127.0.0.1:{silent.getsockname()[1]}/api"}
                ),
            )
            # Warm up: first lookups, imports, connection pools.
            for i in range(5):
                create_booking(request(event_type.id, 10_000 + i), session=session, handoff=live)
            live.drain(30)

            n = args.n
            results = {
                "baseline": timed(n, lambda i: baseline(session, event_type, host, i)),
                "create": timed(
                    n,
                    lambda i: create_booking(request(event_type.id, i), session=session),
                ),
            }
            # The same pace without a hand-off: what the live case is compared with.
            results["create paced"] = timed(
                n,
                lambda i: create_booking(request(event_type.id, i), session=session),
                pace=1 / args.rate,
            )
            commit_times: dict[str, float] = {}

            def create_live(i: int) -> None:
                result = create_booking(request(event_type.id, i), session=session, handoff=live)
                commit_times[result.event_id] = time.time()

            # Paced below the Prefect server's run-creation capacity (~9 runs/s on 2 cores).
            results["create+live"] = timed(n, create_live, pace=1 / args.rate)
            live.drain(120)
            results["create+silent"] = timed(
                n,
                lambda i: create_booking(
                    request(event_type.id, i), session=session, handoff=stalled
                ),
            )
            lags = []
            for event_id, committed in commit_times.items():
                event = session.get(OutboxEvent, event_id)
                session.refresh(event)
                if event.dispatched_at is not None:
                    lags.append(event.dispatched_at.timestamp() - committed)
            live.close()
            stalled.close(timeout=1)
    finally:
        stack.stop()
        silent.close()

    base_ms = median_ms(results["baseline"])
    print(f"database: {args.database}, n={args.n} per case")
    print(f"{'case':<14} {'median ms':>10} {'p90 ms':>8} {'x baseline':>11}")
    for name, samples in results.items():
        p90 = statistics.quantiles(samples, n=10)[-1] * 1000
        median = median_ms(samples)
        print(f"{name:<14} {median:>10.2f} {p90:>8.2f} {median / base_ms:>11.2f}")
    print(
        "commit -> run created (background, live server): "
        f"median {statistics.median(lags) * 1000:.0f} ms"
        f" over {len(lags)} of {len(commit_times)} dispatched"
    )


if __name__ == "__main__":
    main()

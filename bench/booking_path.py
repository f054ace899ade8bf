"""What the booker waits for: `create_booking` against the floor of any booking write.

    python -m bench.booking_path [--n 300] [--database sqlite|postgresql]

  floor          read the event type, insert the booking and its attendee, commit
  create         create_booking: validation, the booking, attendee, host link and outbox
                 event in one transaction, no hand-off
  create+live    create_booking handing off to a dispatcher on a live Prefect server
  create+silent  create_booking handing off to a Prefect API that accepts and never answers

Each call uses a new session, as a request handler would. The cases are interleaved call by
call, so drift on a noisy machine moves them alike. Medians and p99 in milliseconds; ratios
against the floor.
"""

import argparse
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from booking.db import make_engine, upgrade_schema
from booking.enums import BookingStatus
from booking.models import Attendee, Booking, EventType, User
from booking.service import PostCommitHandoff, create_booking
from booking.settings import Settings
from handoff.dispatch import PostCommitDispatcher
from local import postgres
from local.stack import LocalPrefect, free_port


def request(event_type_id: int, i: int) -> dict:
    start = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    return {
        "event_type_id": event_type_id,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "booker": {"name": "Bench", "email": f"b{i}@bench.example", "time_zone": "UTC"},
    }


def floor(engine: Engine, event_type_id: int, i: int) -> None:
    """The least any booking costs: read the event type, write booking and attendee, commit."""
    with Session(engine) as session:
        event_type = session.get(EventType, event_type_id)
        assert event_type is not None
        start = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=i)
        booking = Booking(
            uid=uuid.uuid4().hex,
            event_type_id=event_type.id,
            user_id=event_type.owner_id,
            title=event_type.title,
            start_time=start,
            end_time=start + timedelta(minutes=30),
            status=BookingStatus.ACCEPTED,
        )
        session.add(booking)
        session.flush()
        session.add(Attendee(booking_id=booking.id, name="B", email="b@x.example", time_zone="UTC"))
        session.commit()


def create(
    engine: Engine, event_type_id: int, i: int, handoff: PostCommitHandoff | None = None
) -> str:
    with Session(engine) as session:
        result = create_booking(request(event_type_id, i), session=session, handoff=handoff)
    assert result.event_id is not None
    return result.event_id


def interleaved(cases: dict[str, Callable[[int], object]], n: int, pace: float = 0.0) -> dict:
    """Call every case once per round, `n` rounds; seconds per call, by case."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(n):
        for name, case in cases.items():
            started = time.perf_counter()
            case(i)
            samples[name].append(time.perf_counter() - started)
        if pace:
            time.sleep(pace)
    return samples


def summary(samples: dict[str, list[float]], base: str = "floor") -> dict[str, dict]:
    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000

    base_p50, base_p99 = pct(samples[base], 50), pct(samples[base], 99)
    return {
        name: {
            "p50_ms": pct(values, 50),
            "p99_ms": pct(values, 99),
            "p50_ratio": pct(values, 50) / base_p50,
            "p99_ratio": pct(values, 99) / base_p99,
        }
        for name, values in samples.items()
    }


def print_summary(database: str, n: int, results: dict[str, dict]) -> None:
    print(f"database: {database}, n={n} calls per case, interleaved")
    print(f"{'case':<14} {'p50 ms':>8} {'p99 ms':>8} {'p50 x floor':>12} {'p99 x floor':>12}")
    for name, row in results.items():
        print(
            f"{name:<14} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}"
            f" {row['p50_ratio']:>12.2f} {row['p99_ratio']:>12.2f}"
        )


def new_database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    return postgres.url(postgres.DEFAULT_DSN, postgres.create_database("bench"))


def prefect_database() -> str:
    """A fresh PostgreSQL database for a Prefect server (SQLite locks under load)."""
    return postgres.prefect_database_url("bench_prefect")


def seed_event_type(engine: Engine) -> int:
    with Session(engine) as session:
        host = User(name="Bench Host", email=f"host-{uuid.uuid4().hex[:6]}@bench.example")
        session.add(host)
        session.commit()
        event_type = EventType(slug="bench", title="Bench", owner_id=host.id)
        session.add(event_type)
        session.commit()
        assert event_type.id is not None
        return event_type.id


def measure(url: str, api_url: str, n: int, *, with_silent: bool = False) -> dict[str, dict]:
    """floor, create and create+live (and create+silent) on one bookings database."""
    engine = make_engine(url)
    upgrade_schema(engine)
    event_type_id = seed_event_type(engine)
    settings = Settings(database_url=url, prefect_api_url=api_url)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1024)
    silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
    live = PostCommitDispatcher(engine=engine, settings=settings)
    stalled = PostCommitDispatcher(
        engine=engine, settings=settings.model_copy(update={"prefect_api_url": silent_url})
    )
    try:
        for i in range(20):  # warm up: imports, pools, the deployment id lookup
            floor(engine, event_type_id, 100_000 + i)
            create(engine, event_type_id, 200_000 + i, live)
        live.drain(60)
        cases: dict[str, Callable[[int], object]] = {
            "floor": lambda i: floor(engine, event_type_id, i),
            "create": lambda i: create(engine, event_type_id, 300_000 + i),
            "create+live": lambda i: create(engine, event_type_id, 400_000 + i, live),
        }
        if with_silent:
            cases["create+silent"] = lambda i: create(engine, event_type_id, 500_000 + i, stalled)
        samples = interleaved(cases, n)
        live.drain(120)
    finally:
        live.close()
        stalled.close(timeout=1)
        silent.close()
        engine.dispose()
    return summary(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    stack = LocalPrefect(home=tmp / "prefect", port=free_port(), database_url=prefect_database())
    stack.start()
    try:
        stack.deploy_all()
        results = measure(new_database(args.database, tmp), stack.api_url, args.n, with_silent=True)
    finally:
        stack.stop()
    print_summary(args.database, args.n, results)


if __name__ == "__main__":
    main()

"""What a host's or booker's move waits for: confirm and cancel against their floor.

    python -m bench.transitions [--n 300] [--database sqlite|postgresql]

  floor    the same writes by hand, in their cheapest form (Core statements built once):
           UPDATE the booking's status, INSERT an outbox row of the same size, commit
  confirm  confirm_booking: the conditional UPDATE, the booking's snapshot, the outbox event
  cancel   cancel_booking, likewise, with a reason

Each call uses a new session, on a booking made for it beforehand (not timed). The cases are
interleaved call by call, so drift on a noisy machine moves them alike. No hand-off: what a
dispatcher adds is the same as for a creation (`python -m bench.booking_path`). Medians and
p99 in milliseconds; ratios against the floor.
"""

import argparse
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, bindparam
from sqlmodel import Session, select

from bench.booking_path import interleaved, new_database, print_summary, request, summary
from booking.db import make_engine, upgrade_schema
from booking.enums import BookingStatus
from booking.models import Booking, EventType, OutboxEvent, User
from booking.models.types import table
from booking.service import create_booking
from booking.timeutil import utcnow
from booking.transitions import cancel_booking, confirm_booking


def seed(engine: Engine) -> tuple[int, int]:
    """A host with a free event type and one that needs confirmation."""
    with Session(engine) as session:
        host = User(name="Bench Host", email=f"{uuid.uuid4().hex[:8]}@bench.example")
        session.add(host)
        session.commit()
        kinds = [
            EventType(slug=f"t{n}", title="Bench", owner_id=host.id, requires_confirmation=n == 1)
            for n in (0, 1)
        ]
        session.add_all(kinds)
        session.commit()
        return kinds[0].id, kinds[1].id  # type: ignore[return-value]


def book(engine: Engine, event_type_id: int, i: int) -> tuple[str, dict]:
    with Session(engine) as session:
        result = create_booking(request(event_type_id, i), session=session)
        event = session.get(OutboxEvent, result.event_id)
        assert event is not None
        return result.uid, event.payload


_booking = table(Booking)
# The cheapest form of the writes: Core statements built once, executed with parameters.
FLOOR_UPDATE = (
    _booking.update()
    .where(_booking.c.uid == bindparam("the_uid"), _booking.c.status == BookingStatus.ACCEPTED)
    .values(status=BookingStatus.CANCELLED, updated_at=bindparam("now"))
)


def floor(engine: Engine, uid: str, payload: dict) -> None:
    with Session(engine) as session:
        session.execute(FLOOR_UPDATE, {"the_uid": uid, "now": utcnow()})
        session.execute(
            table(OutboxEvent).insert(),
            [
                {
                    "id": str(uuid.uuid4()),
                    "booking_uid": uid,
                    "kind": "booking.post_commit",
                    "schema_version": 3,
                    "payload": payload,
                    "dispatch_mode": "bundled",
                    "flow_run_ids": {},
                    "dispatch_attempts": 0,
                    "created_at": utcnow(),
                }
            ],
        )
        session.commit()


def measure(url: str, n: int) -> dict[str, dict]:
    engine = make_engine(url)
    upgrade_schema(engine)
    free, needs_ok = seed(engine)
    made: dict[str, list[tuple[str, dict]]] = {"floor": [], "confirm": [], "cancel": []}
    for i in range(n + 20):  # the bookings each call moves, made before the clock runs
        made["floor"].append(book(engine, free, 3 * i))
        made["confirm"].append(book(engine, needs_ok, 3 * i + 1))
        made["cancel"].append(book(engine, free, 3 * i + 2))

    def confirm(uid: str) -> None:
        with Session(engine) as session:
            confirm_booking(uid, session=session)

    def cancel(uid: str) -> None:
        with Session(engine) as session:
            cancel_booking(uid, session=session, reason="bench", cancelled_by="attendee")

    cases: dict[str, Callable[[int], object]] = {
        "floor": lambda i: floor(engine, *made["floor"][i]),
        "confirm": lambda i: confirm(made["confirm"][i][0]),
        "cancel": lambda i: cancel(made["cancel"][i][0]),
    }
    for i in range(n, n + 20):  # warm up
        for case in cases.values():
            case(i)
    samples = interleaved(cases, n)
    with Session(engine) as session:
        statuses = session.exec(select(Booking.status)).all()
    assert statuses.count(BookingStatus.CANCELLED) == 2 * (n + 20)
    engine.dispose()
    return summary(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    results = measure(new_database(args.database, tmp), args.n)
    print_summary(args.database, args.n, results)


if __name__ == "__main__":
    main()

"""What the rest of a booking's life costs next to its creation, in one run.

    python -m bench.lifecycle [--n 40]

The stack of `python -m bench.pipeline` (Prefect and the bookings on PostgreSQL, one worker
with its forkserver, a subscriber and a mailbox on loopback), bundled arrangement. Then, each
a burst of --n events measured from the first commit until every run is final:

  create   --n bookings confirmed at creation (the pipeline's usual burst)
  confirm  --n bookings that needed confirmation (made beforehand, not measured) confirmed
  cancel   those --n confirmed bookings cancelled (emails to attendee and host included)

CPU-seconds per event for the whole machine and by process (bench/cpu.py), events per
minute, and whether every subscriber message arrived once.
"""

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session

from bench import booking_path
from bench.pipeline import Bench, Scenario
from booking.models import EventType, User, WebhookSubscription
from booking.service import create_booking
from booking.transitions import TransitionResult, cancel_booking, confirm_booking
from deployments.names import POST_COMMIT, idempotency_key
from handoff import PostCommitDispatcher
from local.subscriber import DemoMailbox

TRIGGERS = ["BOOKING_CREATED", "BOOKING_REQUESTED", "BOOKING_CANCELLED"]
Move = Callable[[PostCommitDispatcher], str]  # commits one event, returns its id


def seed(bench: Bench) -> tuple[int, int]:
    with Session(bench.engine, expire_on_commit=False) as session:
        host = User(name="Life Host", email="life-host@bench.example")
        session.add(host)
        session.commit()
        kinds = [
            EventType(slug=f"life-{n}", title="Life", owner_id=host.id, requires_confirmation=n)
            for n in (False, True)
        ]
        session.add_all(kinds)
        session.add(
            WebhookSubscription(
                user_id=host.id, subscriber_url=bench.receiver.url, triggers=TRIGGERS
            )
        )
        session.commit()
        return kinds[0].id, kinds[1].id  # type: ignore[return-value]


def burst(bench: Bench, name: str, moves: list[Move]) -> Scenario:
    """Commit every move at once (each hands its event off), then wait for every run."""
    scenario = Scenario(name, "bundled", len(bench.workers), len(moves))
    with bench.dispatcher("bundled") as dispatcher:
        before = bench.meter.snapshot()
        started = time.time()
        event_ids = [move(dispatcher) for move in moves]
        keys = [idempotency_key(event_id, POST_COMMIT) for event_id in event_ids]
        bench.wait_final(keys)
        scenario.cpu = bench.meter.since(before)
    rows = bench.runs(keys)
    scenario.seconds = max(end for *_, end in rows if end).timestamp() - started
    scenario.states = {state: sum(1 for s, *_ in rows if s == state) for state, *_ in rows}
    return scenario


def run(n: int) -> list[Scenario]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-life-"))
    mailbox = DemoMailbox()
    port = mailbox.start()
    bench = Bench(tmp, {"BOOKING_SMTP_HOST": "127.0.0.1", "BOOKING_SMTP_PORT": str(port)})
    requested: list[str] = []  # uids of the bookings that await confirmation
    made = iter(range(50_000, 10**6))
    try:
        bench.start()
        bench.start_workers(1)
        free, needs_ok = seed(bench)
        bench.warm_up("bundled")

        def create(kind: int) -> Move:
            def move(dispatcher: PostCommitDispatcher) -> str:
                request = booking_path.request(kind, next(made))
                with Session(bench.engine) as session:
                    result = create_booking(request, session=session, handoff=dispatcher)
                if kind == needs_ok:
                    requested.append(result.uid)
                assert result.event_id is not None
                return result.event_id

            return move

        def transition(fn: Callable[..., TransitionResult], uid: str, **kw: str) -> Move:
            def move(dispatcher: PostCommitDispatcher) -> str:
                with Session(bench.engine) as session:
                    result = fn(uid, session=session, handoff=dispatcher, **kw)
                assert result.event_id is not None
                return result.event_id

            return move

        created = burst(bench, "create", [create(free) for _ in range(n)])
        burst(bench, "(requests)", [create(needs_ok) for _ in range(n)])
        confirmed = burst(bench, "confirm", [transition(confirm_booking, u) for u in requested])
        cancelled = burst(
            bench,
            "cancel",
            [
                transition(cancel_booking, u, reason="bench", cancelled_by="attendee")
                for u in requested
            ],
        )
        time.sleep(5)  # the last messages land
        print(
            f"mailbox: {len(mailbox.received)} emails (expected {2 * n}); subscriber: "
            f"{bench.receiver.duplicates()} messages received twice"
        )
        return [created, confirmed, cancelled]
    finally:
        bench.stop()
        mailbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()
    scenarios = run(args.n)
    print(f"{args.n} events per burst, bundled, one worker")
    print(
        f"{'burst':<11} {'machine CPU-s/event':>20} {'server':>8} {'worker':>8} {'postgres':>9} "
        f"{'per min':>8}  states"
    )
    for s in scenarios:
        per = s.cpu_per_booking()
        total = per.get("machine", 0.0)
        print(
            f"{s.name:<11} {total:>20.2f} {per.get('server', 0):>8.2f} {per.get('worker', 0):>8.2f}"
            f" {per.get('postgres', 0):>9.2f} {s.per_minute:>8.1f}  {s.states}"
        )


if __name__ == "__main__":
    main()

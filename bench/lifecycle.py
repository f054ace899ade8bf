"""What the rest of a booking's life costs next to its creation, in one run.

    python -m bench.lifecycle [--n 20] [--rounds 3]

The stack of `python -m bench.pipeline` (Prefect and the bookings on PostgreSQL, one worker
with its forkserver, a subscriber and a mailbox on loopback), bundled arrangement. Then, each
a burst of --n events measured from the first commit until every run is final:

  create   --n bookings confirmed at creation (the pipeline's usual burst)
  confirm  --n bookings that needed confirmation (made beforehand, not measured) confirmed
  cancel   those --n confirmed bookings cancelled (emails to attendee and host included)

The three bursts are interleaved over --rounds rounds (create, confirm, cancel, then again), so
a server that warms up or a database that grows weighs on each alike. The periodic
deployments (deliver-due-work, the relay every five minutes) are paused: they run on the
clock, not per event, and one of their runs falling inside one burst and not another moved
that burst's figure by more than the difference measured. CPU-seconds per event
for the whole machine and by process (bench/cpu.py), median over the rounds, each beside the
creation's (the target: a confirm and a cancel cost no more than a creation), events per
minute, and whether every subscriber message arrived once.
"""

import argparse
import statistics
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


def run(n: int, rounds: int) -> dict[str, list[Scenario]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-life-"))
    mailbox = DemoMailbox()
    port = mailbox.start()
    bench = Bench(tmp, {"BOOKING_SMTP_HOST": "127.0.0.1", "BOOKING_SMTP_PORT": str(port)})
    requested: list[str] = []  # uids of the bookings that await confirmation
    made = iter(range(50_000, 10**6))
    try:
        bench.start()
        bench.pause_periodic()  # no periodic run inside a burst
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

        measured: dict[str, list[Scenario]] = {"create": [], "confirm": [], "cancel": []}
        for _ in range(rounds):
            requested.clear()
            measured["create"].append(burst(bench, "create", [create(free) for _ in range(n)]))
            burst(bench, "(requests)", [create(needs_ok) for _ in range(n)])
            uids = list(requested)
            measured["confirm"].append(
                burst(bench, "confirm", [transition(confirm_booking, u) for u in uids])
            )
            measured["cancel"].append(
                burst(
                    bench,
                    "cancel",
                    [
                        transition(cancel_booking, u, reason="bench", cancelled_by="attendee")
                        for u in uids
                    ],
                )
            )
        time.sleep(5)  # the last messages land
        print(
            f"mailbox: {len(mailbox.received)} emails (expected {2 * n * rounds}); subscriber: "
            f"{bench.receiver.duplicates()} messages received twice"
        )
        return measured
    finally:
        bench.stop()
        mailbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    measured = run(args.n, args.rounds)

    def median(kind: str, part: str) -> float:
        return statistics.median(s.cpu_per_booking().get(part, 0.0) for s in measured[kind])

    print(f"{args.n} events per burst, {args.rounds} rounds, bundled, one worker; medians")
    print(
        f"{'burst':<8} {'machine CPU-s/event':>20} {'x create':>9} {'server':>7} {'worker':>7}"
        f" {'postgres':>9} {'per min':>8}  each round (machine)"
    )
    base = median("create", "machine")
    for kind, scenarios in measured.items():
        total = median(kind, "machine")
        rounds = " ".join(f"{s.cpu_per_booking().get('machine', 0):.2f}" for s in scenarios)
        per_minute = statistics.median(s.per_minute for s in scenarios)
        print(
            f"{kind:<8} {total:>20.2f} {total / base:>8.2f}x {median(kind, 'server'):>7.2f}"
            f" {median(kind, 'worker'):>7.2f} {median(kind, 'postgres'):>9.2f} {per_minute:>8.1f}"
            f"  {rounds}"
        )
    states = {k: sum((s.states.get("COMPLETED", 0) for s in v), 0) for k, v in measured.items()}
    print(f"runs Completed: {states} (of {args.n * args.rounds} each)")


if __name__ == "__main__":
    main()

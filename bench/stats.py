"""How long `booking subscriptions stats` takes on a long delivery log.

    python -m bench.stats [--attempts 1100000] [--subscriptions 20] [--days 30] [--repeat 5]

Fills a new PostgreSQL bookings database with `--attempts` delivery attempts spread evenly
over `--subscriptions` subscriptions and `--days` days (one message per attempt, one in ten
answered 503, a response time per attempt), the size of the history
bench's 1,000,000-booking log, with one SQL statement, then times the command's query
(`tasks.delivery.health.subscription_health`) for every subscription and for one, over the
last 24 hours and the last 7 days: the median of `--repeat` runs, after one warm-up.
"""

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from sqlmodel import Session

from bench import booking_path
from booking.db import make_engine, upgrade_schema
from booking.models import WebhookSubscription
from booking.timeutil import utcnow
from local import postgres
from tasks.delivery.health import subscription_health

FILL = """
INSERT INTO webhookdelivery (subscription_id, booking_uid, trigger_event, message_id, attempt,
                             status_code, duration_ms, error, response_excerpt, extra,
                             created_at)
SELECT %(first)s + n %% %(subs)s, 'uid-' || n, 'BOOKING_CREATED', 'msg_' || n, 1,
       CASE WHEN n %% 10 = 0 THEN 503 ELSE 200 END, 20 + n %% 400, NULL, NULL, '{}',
       now() - (n::bigint * %(span)s / %(attempts)s) * interval '1 second'
  FROM generate_series(1, %(attempts)s) AS n
"""


def timed(run, repeat: int) -> float:
    run()  # warm-up: plans and pages cached, as on a server that answers all day
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1_100_000)
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    url = booking_path.new_database("postgresql", Path(tempfile.mkdtemp(prefix="bench-stats-")))
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
        event_type_id = booking_path.seed_event_type(engine)
        with Session(engine) as session:
            subs = [
                WebhookSubscription(
                    event_type_id=event_type_id,
                    subscriber_url=f"https://hooks{n}.example/in",
                    triggers=["BOOKING_CREATED"],
                )
                for n in range(args.subscriptions)
            ]
            session.add_all(subs)
            session.commit()
            first = min(sub.id for sub in subs)  # type: ignore[type-var]
        started = time.perf_counter()
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            conn.execute(
                FILL,
                {
                    "first": first,
                    "subs": args.subscriptions,
                    "span": args.days * 86400,
                    "attempts": args.attempts,
                },
            )
            conn.execute("ANALYZE webhookdelivery")
        filled = time.perf_counter() - started
        with Session(engine) as session:
            now = utcnow()
            rows = {
                "every subscription, 24 h": timed(
                    lambda: subscription_health(session, now - timedelta(days=1)), args.repeat
                ),
                "one subscription, 24 h": timed(
                    lambda: subscription_health(session, now - timedelta(days=1), first),
                    args.repeat,
                ),
                "every subscription, 7 days": timed(
                    lambda: subscription_health(session, now - timedelta(days=7)), args.repeat
                ),
            }
    finally:
        engine.dispose()
        postgres.drop_database(url.rsplit("/", 1)[1])
    print(
        f"{args.attempts:,} attempts, {args.subscriptions} subscriptions, {args.days} days"
        f" (filled in {filled:.0f} s); median of {args.repeat}:\n"
    )
    print("| query | ms | target |\n| --- | --- | --- |")
    for what, ms in rows.items():
        target = "≤ 300 ms" if "24 h" in what else "reported"
        print(f"| {what} | {ms:.0f} | {target} |")


if __name__ == "__main__":
    main()

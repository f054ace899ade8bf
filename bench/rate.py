"""Does a subscription with `--rate N` get N messages a second? At 2, 5 and 20 a second.

    python -m bench.rate [--messages 100] [--senders 4] [--rates 2 5 20]

For each rate: a bookings database on PostgreSQL, one subscription with that rate to a
receiver on loopback, `--messages` messages (one booking each) sent by `--senders`
processes at once, as that many workers would, each through `send_webhook` (the delivery
step's own code, with the rate's slot reservation). It reports the rate the receiver saw
((n - 1) / first-to-last arrival), the most messages that arrived within any one second, and
what the limit costs: PostgreSQL's CPU per message (the limit makes no Prefect request).
"""

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session

from bench import booking_path
from bench.cpu import Meter, by_name
from bench.receiver import Receiver
from booking.db import make_engine, upgrade_schema
from booking.enums import WebhookTrigger
from booking.models import EventType, WebhookSubscription
from booking.outbox import load_payload
from booking.service import create_booking
from local import postgres


def _send(database_url: str, messages: list[dict]) -> None:
    os.environ["BOOKING_DATABASE_URL"] = database_url
    os.environ["BOOKING_WEBHOOK_ALLOWED_NETWORKS"] = '["127.0.0.0/8"]'
    from tasks.delivery.message import WebhookMessage
    from tasks.delivery.send import send_webhook

    for message in messages:
        send_webhook(WebhookMessage.model_validate(message), attempt_no=1)


def busiest_second(arrivals: list[float]) -> int:
    return max(sum(1 for t in arrivals if start <= t < start + 1) for start in arrivals)


def measure(rate: float, count: int, senders: int, tmp: Path) -> dict[str, Any]:
    from tasks.delivery.message import Subscriber, booking_messages

    database_url = booking_path.new_database("postgresql", tmp)
    engine = make_engine(database_url)
    upgrade_schema(engine)
    receiver = Receiver()
    try:
        event_type_id = booking_path.seed_event_type(engine)
        with Session(engine, expire_on_commit=False) as session:
            owner = session.get_one(EventType, event_type_id).owner_id
            sub = WebhookSubscription(
                user_id=owner,
                subscriber_url=receiver.url,
                triggers=["BOOKING_CREATED"],
                rate_per_second=rate,
            )
            session.add(sub)
            session.commit()
            messages = []
            for i in range(count):
                booked = create_booking(booking_path.request(event_type_id, i), session=session)
                payload = load_payload(session, booked.event_id)
                (message,) = booking_messages(
                    payload, WebhookTrigger.BOOKING_CREATED, [Subscriber(sub.id, "127.0.0.1")]
                )
                messages.append(message.model_dump(mode="json"))
        meter = Meter({"postgres": by_name("postgres")})
        before = meter.snapshot()
        context = multiprocessing.get_context("spawn")
        shares = [messages[n::senders] for n in range(senders)]
        processes = [context.Process(target=_send, args=(database_url, share)) for share in shares]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        spent = meter.since(before)
        time.sleep(0.5)
        arrivals = sorted(receiver.first_seen.values())
    finally:
        receiver.stop()
        engine.dispose()
        postgres.drop_database(database_url.rsplit("/", 1)[1])
    achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return {
        "rate": rate,
        "messages": count,
        "delivered": len(arrivals),
        "duplicates": receiver.duplicates(),
        "achieved": achieved,
        "within_10_percent": abs(achieved - rate) <= 0.1 * rate,
        "busiest_second": busiest_second(arrivals),
        "busiest_met": busiest_second(arrivals) <= rate + 1,
        "postgres_cpu_ms_per_message": spent["postgres"] / count * 1000,
    }


def table(rows: list[dict[str, Any]], senders: int) -> str:
    lines = [
        f"{rows[0]['messages']} messages per rate, sent by {senders} processes at once;"
        " one subscription, a receiver on loopback.",
        "",
        "| rate set | achieved | within 10 % | busiest second | ≤ rate + 1 | delivered |"
        " PostgreSQL CPU per message |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['rate']:g}/s | {r['achieved']:.2f}/s"
            f" | {'yes' if r['within_10_percent'] else 'no'}"
            f" | {r['busiest_second']} | {'yes' if r['busiest_met'] else 'no'}"
            f" | {r['delivered']} of {r['messages']}, {r['duplicates']} twice"
            f" | {r['postgres_cpu_ms_per_message']:.2f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rates", type=float, nargs="+", default=[2.0, 5.0, 20.0])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-rate-"))
    rows = [measure(rate, args.messages, args.senders, tmp) for rate in args.rates]
    print(table(rows, args.senders))


if __name__ == "__main__":
    main()

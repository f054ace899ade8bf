"""Each subscription's health over a window, from the delivery log: how many messages, how
many got through at the first try and in the end, how fast the subscriber answers, what
waits for redelivery, and its last failure. `booking subscriptions stats` prints it; the
daily retention run shows it as a table in the UI.

Every query reads the window's attempts through the log's time index (and its (subscription,
time) index for one subscription), so the cost follows the window, not the whole history.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from booking.enums import WorkStatus
from booking.models import WebhookDelivery, WebhookRedelivery, WebhookSubscription
from tasks.delivery.message import url_host


@dataclass(frozen=True)
class Health:
    subscription_id: int
    host: str
    active: bool
    messages: int
    first_try_ok: float | None  # share of messages first attempted in the window
    delivered: float | None  # share of the window's messages with a 2xx attempt
    p50_ms: float | None
    p95_ms: float | None
    waiting: int  # messages waiting for redelivery now
    last_failure_at: datetime | None
    last_failure: str | None  # HTTP status or the error, shortened

    def row(self) -> dict[str, object]:
        """The table artifact's row: every cell filled ("none", "n/a" where nothing is)."""

        def share(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.1%}"

        def ms(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.0f} ms"

        return {
            "subscription": self.subscription_id,
            "host": self.host,
            "active": "yes" if self.active else "no",
            "messages": self.messages,
            "first try ok": share(self.first_try_ok),
            "delivered": share(self.delivered),
            "p50": ms(self.p50_ms),
            "p95": ms(self.p95_ms),
            "waiting for redelivery": self.waiting,
            "last failure": "none"
            if self.last_failure_at is None
            else f"{self.last_failure_at:%Y-%m-%d %H:%M} UTC {self.last_failure}",
        }


def _ok(column):  # noqa: ANN001, ANN202 - a SQL expression
    return col(column).between(200, 299)


def subscription_health(
    session: Session, since: datetime, subscription_id: int | None = None
) -> list[Health]:
    """Health of every subscription (or one) from `since` until now, by id: five queries
    whatever the number of subscriptions, each grouped by subscription."""
    attempt = WebhookDelivery
    in_window = [col(attempt.created_at) >= since]
    one_subscription = []  # of the redelivery rows
    subs_query = select(WebhookSubscription).order_by(col(WebhookSubscription.id))
    if subscription_id is not None:
        in_window.append(attempt.subscription_id == subscription_id)
        one_subscription.append(WebhookRedelivery.subscription_id == subscription_id)
        subs_query = subs_query.where(WebhookSubscription.id == subscription_id)
    subs = session.exec(subs_query).all()

    per_message = (
        select(
            attempt.subscription_id,
            func.max(case((_ok(attempt.status_code), 1), else_=0)).label("ok"),
            func.max(case(((attempt.attempt == 1) & _ok(attempt.status_code), 1), else_=0)).label(
                "first_ok"
            ),
            func.max(case((attempt.attempt == 1, 1), else_=0)).label("first"),
        )
        .where(*in_window)
        .group_by(col(attempt.subscription_id), col(attempt.message_id))
        .subquery()
    )
    counts = {
        sub_id: (messages, ok, first, first_ok)
        for sub_id, messages, ok, first, first_ok in session.exec(
            select(
                per_message.c.subscription_id,
                func.count(),
                func.sum(per_message.c.ok),
                func.sum(per_message.c.first),
                func.sum(per_message.c.first_ok),
            ).group_by(per_message.c.subscription_id)
        )
    }
    answered = [*in_window, col(attempt.status_code).is_not(None)]
    if session.get_bind().dialect.name == "postgresql":
        times = {
            sub_id: (p50, p95)
            for sub_id, p50, p95 in session.exec(
                select(
                    attempt.subscription_id,
                    func.percentile_cont(0.5).within_group(col(attempt.duration_ms)),
                    func.percentile_cont(0.95).within_group(col(attempt.duration_ms)),
                )
                .where(*answered)
                .group_by(col(attempt.subscription_id))
            )
        }
    else:  # SQLite has no percentile: the window's response times, sorted here
        durations: dict[int, list[int]] = {}
        for sub_id, ms in session.exec(
            select(attempt.subscription_id, attempt.duration_ms).where(*answered)
        ):
            durations.setdefault(sub_id, []).append(ms)
        for ms in durations.values():
            ms.sort()
        times = {
            sub_id: (_percentile(ms, 50), _percentile(ms, 95)) for sub_id, ms in durations.items()
        }
    waiting = dict(
        session.exec(
            select(WebhookRedelivery.subscription_id, func.count())
            .where(WebhookRedelivery.status == WorkStatus.PENDING, *one_subscription)
            .group_by(col(WebhookRedelivery.subscription_id))
        ).all()
    )
    failed = ~_ok(attempt.status_code) | col(attempt.status_code).is_(None)
    last_ids = (
        select(func.max(attempt.id))
        .where(*in_window, failed)
        .group_by(col(attempt.subscription_id))
    )
    failures = {
        row.subscription_id: row
        for row in session.exec(select(attempt).where(col(attempt.id).in_(last_ids)))
    }

    found = []
    for sub in subs:
        messages, ok, first, first_ok = counts.get(sub.id, (0, 0, 0, 0))
        p50, p95 = times.get(sub.id, (None, None))  # type: ignore[arg-type]
        failure = failures.get(sub.id)  # type: ignore[arg-type]
        found.append(
            Health(
                subscription_id=sub.id,  # type: ignore[arg-type]
                host=url_host(sub.subscriber_url),
                active=sub.active,
                messages=messages,
                first_try_ok=first_ok / first if first else None,
                delivered=ok / messages if messages else None,
                p50_ms=p50,
                p95_ms=p95,
                waiting=waiting.get(sub.id, 0),  # type: ignore[arg-type]
                last_failure_at=failure.created_at if failure else None,
                last_failure=_failure_text(failure.status_code, failure.error) if failure else None,
            )
        )
    return found


def _percentile(ordered: list[int], q: int) -> float | None:
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _failure_text(status: int | None, error: str | None) -> str:
    if status is not None:
        return f"HTTP {status}"
    return (error or "failed")[:80]

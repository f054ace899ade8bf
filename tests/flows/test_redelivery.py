"""A subscriber down for hours still gets its webhook: the due-work sweep sends it again on
a long backoff, with the original `webhook-id` and body. The sweep is called with the time
(`now`), so hours pass without sleeping."""

import json
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import Session, col, select
from werkzeug import Request, Response

from booking.enums import WorkStatus
from booking.models import WebhookDelivery, WebhookRedelivery, WebhookSubscription
from booking.service import create_booking
from booking.timeutil import utcnow
from flows.deliver_due_work import deliver_due_work
from flows.webhooks import booking_post_commit_webhooks
from tests.factories import booking_request, make_event_type, make_subscription

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
CREATED = ["BOOKING_CREATED"]


class Subscriber:
    """Answers 503 while down, 200 once up; keeps every request."""

    def __init__(self, httpserver: HTTPServer):
        self.up = False
        self.requests: list[tuple[str, bytes]] = []
        httpserver.expect_request("/hook").respond_with_handler(self.handle)
        self.url = httpserver.url_for("/hook")

    def handle(self, request: Request) -> Response:
        self.requests.append((request.headers["webhook-id"], request.get_data()))
        return Response("ok" if self.up else "down", status=200 if self.up else 503)


def booked_and_failed(db: Session, subscriber: Subscriber) -> WebhookRedelivery:
    event_type = make_event_type(db)
    sub = make_subscription(db, subscriber.url, CREATED, event_type_id=event_type.id)
    result = create_booking(booking_request(event_type), session=db)
    state = booking_post_commit_webhooks(result.event_id, result.uid, return_state=True)
    assert state.is_completed()
    assert len(subscriber.requests) == 4  # the first attempt and three in-task retries
    (row,) = db.exec(select(WebhookRedelivery).where(WebhookRedelivery.subscription_id == sub.id))
    return row


def sweep(db: Session, at) -> WebhookRedelivery:
    deliver_due_work(now=at, return_state=True)
    db.expire_all()
    return db.exec(select(WebhookRedelivery)).one()


def test_a_subscriber_down_for_hours_gets_the_message_once_with_its_original_id(
    db: Session, httpserver: HTTPServer, configure
) -> None:
    configure(webhook_redelivery_delays_seconds="[300, 1800, 7200]")
    subscriber = Subscriber(httpserver)
    row = booked_and_failed(db, subscriber)
    start = utcnow()
    assert timedelta(seconds=290) < row.due_at - start <= timedelta(seconds=300)

    assert sweep(db, start + timedelta(minutes=1)).attempts == 0  # not due yet
    assert len(subscriber.requests) == 4
    row = sweep(db, start + timedelta(minutes=6))  # still down: next in 30 minutes
    assert (row.status, row.attempts) == (WorkStatus.PENDING, 1)
    assert row.due_at >= start + timedelta(minutes=35)
    subscriber.up = True
    row = sweep(db, start + timedelta(minutes=40))

    assert (row.status, row.attempts) == (WorkStatus.SENT, 2)  # the sweep's two attempts
    ids = {webhook_id for webhook_id, _ in subscriber.requests}
    bodies = {body for _, body in subscriber.requests}
    assert len(ids) == 1 and len(bodies) == 1  # the same webhook-id and body every time
    assert len(subscriber.requests) == 6
    log = db.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id))).all()
    assert [entry.attempt for entry in log] == [1, 2, 3, 4, 5, 6]
    assert [entry.status_code for entry in log] == [503] * 5 + [200]
    assert sweep(db, start + timedelta(hours=5)).status == WorkStatus.SENT
    assert len(subscriber.requests) == 6  # sent once


def test_after_the_last_redelivery_the_message_ends_failed_with_its_history(
    db: Session, httpserver: HTTPServer, configure
) -> None:
    configure(webhook_redelivery_delays_seconds="[60, 120]")
    subscriber = Subscriber(httpserver)
    booked_and_failed(db, subscriber)
    start = utcnow()

    sweep(db, start + timedelta(minutes=2))
    row = sweep(db, start + timedelta(minutes=5))

    assert (row.status, row.attempts) == (WorkStatus.FAILED, 2)
    assert "503" in row.last_error
    assert len(db.exec(select(WebhookDelivery)).all()) == 6
    assert sweep(db, start + timedelta(days=2)).attempts == 2  # never tried again


def test_a_subscription_failing_for_days_is_deactivated_with_the_reason(
    db: Session, httpserver: HTTPServer, configure
) -> None:
    configure(webhook_disable_after_hours="0.0001")  # the first failures are older than this
    subscriber = Subscriber(httpserver)
    row = booked_and_failed(db, subscriber)

    sweep(db, utcnow() + timedelta(minutes=6))

    subscription = db.get(WebhookSubscription, row.subscription_id)
    db.refresh(subscription)
    assert not subscription.active
    assert "every delivery failed since" in subscription.deactivated_reason
    row = sweep(db, utcnow() + timedelta(hours=1))
    assert row.status == WorkStatus.SKIPPED and len(subscriber.requests) == 5


def test_recovery_after_an_outage_sends_what_failed_once_in_commit_order(
    db: Session, httpserver: HTTPServer, configure
) -> None:
    from booking.transitions import cancel_booking
    from flows.recover_deliveries import recover_deliveries

    configure(webhook_redelivery_delays_seconds="[]")  # a failed message ends FAILED at once
    subscriber = Subscriber(httpserver)
    event_type = make_event_type(db)
    sub = make_subscription(
        db, subscriber.url, ["BOOKING_CREATED", "BOOKING_CANCELLED"], event_type_id=event_type.id
    )
    since = utcnow()
    first = create_booking(booking_request(event_type), session=db)
    booking_post_commit_webhooks(first.event_id, first.uid, return_state=True)
    cancelled = cancel_booking(first.uid, session=db)
    booking_post_commit_webhooks(cancelled.event_id, first.uid, return_state=True)
    second = create_booking(booking_request(event_type), session=db)
    booking_post_commit_webhooks(second.event_id, second.uid, return_state=True)
    failed_ids = list(dict.fromkeys(webhook_id for webhook_id, _ in subscriber.requests))
    assert len(failed_ids) == 3  # each tried four times, then FAILED
    subscriber.up = True
    before = len(subscriber.requests)

    counts = recover_deliveries(sub.id, since)
    again = recover_deliveries(sub.id, since)

    sent = subscriber.requests[before:]
    assert sorted(webhook_id for webhook_id, _ in sent) == sorted(failed_ids)  # each once
    triggers = [json.loads(body) for _, body in sent]
    of_first = [b["triggerEvent"] for b in triggers if b["payload"]["uid"] == first.uid]
    assert of_first == ["BOOKING_CREATED", "BOOKING_CANCELLED"]  # in commit order
    assert counts["delivered"] == 3 and again["messages"] == 0  # nothing sent twice

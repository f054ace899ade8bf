"""The webhooks flow, called directly, delivering to real HTTP subscribers on loopback."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import update
from sqlmodel import Session, col, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug import Request, Response

from booking.enums import WebhookTrigger, WorkStatus
from booking.models import (
    ScheduledTrigger,
    WebhookDelivery,
    WebhookRedelivery,
    WebhookSubscription,
)
from booking.models.types import table
from booking.service import create_booking
from booking.templates import InvalidTemplate
from flows.webhooks import booking_post_commit_webhooks
from tests.factories import booking_request, make_event_type, make_subscription
from tests.helpers import settled_task_runs

SECRET = "whk-secret-1"
CREATED = ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_REQUESTED"]

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def book(db: Session, event_type, **overrides):
    return create_booking(booking_request(event_type, **overrides), session=db)


def run_flow(result):
    return booking_post_commit_webhooks(result.event_id, result.uid, return_state=True)


def received(httpserver: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == path]


def attempts(db: Session, subscription_id: int) -> list[WebhookDelivery]:
    db.expire_all()
    return list(
        db.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(col(WebhookDelivery.id))
        )
    )


def test_created_booking_is_signed_and_sent_to_matching_subscribers_only(
    db: Session, httpserver: HTTPServer
) -> None:
    event_type = make_event_type(db)
    other = make_event_type(db)
    make_subscription(
        db, httpserver.url_for("/mine"), CREATED, user_id=event_type.owner_id, secret=SECRET
    )
    make_subscription(
        db, httpserver.url_for("/cancel-only"), ["BOOKING_CANCELLED"], event_type_id=event_type.id
    )
    make_subscription(db, httpserver.url_for("/other-host"), CREATED, user_id=other.owner_id)
    httpserver.expect_request("/mine", method="POST").respond_with_data("ok")
    result = book(db, event_type)

    state = run_flow(result)

    assert state.is_completed()
    (request,) = received(httpserver, "/mine")
    assert received(httpserver, "/cancel-only") == received(httpserver, "/other-host") == []
    body = request.get_data()
    assert (
        request.headers["X-Cal-Signature-256"]
        == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    )
    Webhook(SECRET.encode()).verify(body, dict(request.headers))
    envelope = json.loads(body)
    assert envelope["triggerEvent"] == "BOOKING_CREATED"
    assert envelope["payload"]["uid"] == result.uid
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("fields", "reschedule", "expected"),
    [
        ({"requires_confirmation": True}, False, "BOOKING_REQUESTED"),
        ({}, True, "BOOKING_RESCHEDULED"),
    ],
)
def test_requested_and_rescheduled_bookings_send_their_event(
    db: Session, httpserver: HTTPServer, fields: dict, reschedule: bool, expected: str
) -> None:
    event_type = make_event_type(db, **fields)
    make_subscription(db, httpserver.url_for("/hook"), CREATED, event_type_id=event_type.id)
    httpserver.expect_request("/hook").respond_with_data("ok")
    original = book(db, event_type) if reschedule else None
    result = book(db, event_type, reschedule_uid=original.uid if original else None)

    state = run_flow(result)

    assert state.is_completed()
    (request,) = received(httpserver, "/hook")
    envelope = json.loads(request.get_data())
    assert envelope["triggerEvent"] == expected
    assert envelope["payload"]["rescheduleUid"] == (original.uid if original else None)
    assert request.headers["X-Cal-Signature-256"] == "no-secret-provided"


def test_500_500_200_is_one_delivery_after_three_attempts_with_one_webhook_id(
    db: Session, httpserver: HTTPServer
) -> None:
    event_type = make_event_type(db)
    sub = make_subscription(
        db, httpserver.url_for("/flaky"), CREATED, event_type_id=event_type.id, secret=SECRET
    )
    for status in (500, 500, 200):
        httpserver.expect_ordered_request("/flaky").respond_with_data("x" * 5000, status=status)
    result = book(db, event_type)

    state = run_flow(result)

    assert state.is_completed()
    requests = received(httpserver, "/flaky")
    assert len(requests) == 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    log = attempts(db, sub.id)
    assert [(a.attempt, a.status_code) for a in log] == [(1, 500), (2, 500), (3, 200)]
    assert {a.message_id for a in log} == {requests[0].headers["webhook-id"]}
    assert all(len(a.response_excerpt) == 1024 for a in log)  # capped


def test_404_is_not_retried_and_fails_the_flow(db: Session, httpserver: HTTPServer) -> None:
    event_type = make_event_type(db)
    sub = make_subscription(
        db, httpserver.url_for("/missing"), CREATED, event_type_id=event_type.id
    )
    httpserver.expect_request("/missing").respond_with_data("nope", status=404)
    result = book(db, event_type)

    state = run_flow(result)

    assert state.is_failed()
    assert len(received(httpserver, "/missing")) == 1
    assert [a.status_code for a in attempts(db, sub.id)] == [404]


def test_410_deactivates_the_subscription(db: Session, httpserver: HTTPServer) -> None:
    event_type = make_event_type(db)
    sub = make_subscription(db, httpserver.url_for("/gone"), CREATED, event_type_id=event_type.id)
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    result = book(db, event_type)

    run_flow(result)

    db.expire_all()
    assert db.get(WebhookSubscription, sub.id).active is False
    assert len(received(httpserver, "/gone")) == 1


def test_a_slow_subscriber_times_out_and_is_retried(db: Session, httpserver: HTTPServer) -> None:
    event_type = make_event_type(db)
    sub = make_subscription(db, httpserver.url_for("/slow"), CREATED, event_type_id=event_type.id)
    calls: list[float] = []

    def slow_once(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(1.4)  # beyond the 1 s attempt timeout of the tests' settings
        return Response("ok")

    httpserver.expect_request("/slow").respond_with_handler(slow_once)
    result = book(db, event_type)

    state = run_flow(result)

    assert state.is_completed()
    log = attempts(db, sub.id)
    assert log[0].status_code is None and "Timeout" in log[0].error
    assert log[-1].status_code == 200 and len(log) == 2


def test_a_redirect_is_not_followed(db: Session, httpserver: HTTPServer) -> None:
    event_type = make_event_type(db)
    sub = make_subscription(db, httpserver.url_for("/moved"), CREATED, event_type_id=event_type.id)
    httpserver.expect_request("/moved").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/target")}
    )
    result = book(db, event_type)

    state = run_flow(result)

    assert state.is_failed()
    assert received(httpserver, "/target") == []
    assert "redirects are not followed" in attempts(db, sub.id)[0].error


def test_retry_after_is_honoured(db: Session, httpserver: HTTPServer) -> None:
    event_type = make_event_type(db)
    make_subscription(db, httpserver.url_for("/busy"), CREATED, event_type_id=event_type.id)
    httpserver.expect_ordered_request("/busy").respond_with_data(
        "", status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_ordered_request("/busy").respond_with_data("ok")
    result = book(db, event_type)

    state = run_flow(result)

    assert state.is_completed()
    first, second = (r for r, _ in httpserver.log)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    log = attempts(db, make_subscription_id(db, httpserver.url_for("/busy")))
    assert log[1].created_at - log[0].created_at >= timedelta(seconds=2)


def make_subscription_id(db: Session, url: str) -> int:
    return db.exec(
        select(WebhookSubscription.id).where(WebhookSubscription.subscriber_url == url)
    ).one()


def test_a_template_renders_and_a_hostile_one_is_contained(
    db: Session, httpserver: HTTPServer
) -> None:
    event_type = make_event_type(db)
    make_subscription(
        db,
        httpserver.url_for("/templated"),
        CREATED,
        event_type_id=event_type.id,
        payload_template='{"text": "{{ title }} at {{ startTime }}"}',
    )
    hostile = make_subscription(
        db, httpserver.url_for("/hostile"), CREATED, event_type_id=event_type.id
    )
    # Saved before templates were checked at save time: written past the ORM's check.
    db.execute(
        update(table(WebhookSubscription))
        .where(table(WebhookSubscription).c.id == hostile.id)
        .values(payload_template="{{ cycler.__init__.__globals__.os.popen('id').read() }}")
    )
    db.commit()
    httpserver.expect_request("/templated").respond_with_data("ok")
    result = book(db, event_type)

    state = run_flow(result)

    assert state.is_failed()
    (request,) = received(httpserver, "/templated")
    assert json.loads(request.get_data())["text"].endswith("at 2031-03-14T15:00:00Z")
    assert received(httpserver, "/hostile") == []
    (attempt,) = attempts(db, hostile.id)
    assert "unsafe" in attempt.error


def test_an_internal_url_is_refused_unless_allow_listed(
    db: Session, httpserver: HTTPServer, configure
) -> None:
    configure(webhook_allowed_networks="[]")
    event_type = make_event_type(db)
    sub = make_subscription(
        db, httpserver.url_for("/internal"), CREATED, event_type_id=event_type.id
    )
    result = book(db, event_type)

    state = run_flow(result)

    assert state.is_failed()
    assert received(httpserver, "/internal") == []
    (attempt,) = attempts(db, sub.id)
    assert "internal address" in attempt.error


def test_one_failing_subscriber_does_not_stop_the_others(
    db: Session, httpserver: HTTPServer
) -> None:
    event_type = make_event_type(db)
    make_subscription(db, httpserver.url_for("/down"), CREATED, event_type_id=event_type.id)
    make_subscription(db, httpserver.url_for("/up"), CREATED, event_type_id=event_type.id)
    httpserver.expect_request("/down").respond_with_data("", status=503)
    httpserver.expect_request("/up").respond_with_data("ok")
    result = book(db, event_type)

    state = run_flow(result)

    # The run is done: the message that failed its retries is handed to the due-work sweep.
    assert state.is_completed()
    assert len(received(httpserver, "/up")) == 1
    assert len(received(httpserver, "/down")) == 4  # first attempt and three retries
    (redelivery,) = db.exec(select(WebhookRedelivery)).all()
    assert redelivery.status == WorkStatus.PENDING


def test_a_rerun_does_not_send_a_delivered_message_again(
    db: Session, httpserver: HTTPServer
) -> None:
    event_type = make_event_type(db)
    make_subscription(db, httpserver.url_for("/once"), CREATED, event_type_id=event_type.id)
    httpserver.expect_request("/once").respond_with_data("ok")
    result = book(db, event_type)

    run_flow(result)
    again = run_flow(result)

    assert again.is_completed()
    assert len(received(httpserver, "/once")) == 1


def test_meeting_triggers_are_stored_when_confirmed_and_dropped_on_reschedule(
    db: Session, httpserver: HTTPServer
) -> None:
    event_type = make_event_type(db)
    make_subscription(
        db,
        httpserver.url_for("/meetings"),
        ["MEETING_STARTED", "MEETING_ENDED"],
        user_id=event_type.owner_id,
    )
    original = book(db, event_type)
    run_flow(original)
    run_flow(original)  # idempotent: still one row per trigger

    stored = db.exec(
        select(ScheduledTrigger).where(ScheduledTrigger.booking_id == original.booking_id)
    ).all()
    assert sorted((t.trigger_event, t.due_at.isoformat()) for t in stored) == [
        (WebhookTrigger.MEETING_ENDED, "2031-03-14T15:30:00+00:00"),
        (WebhookTrigger.MEETING_STARTED, "2031-03-14T15:00:00+00:00"),
    ]
    assert all(t.status == WorkStatus.PENDING for t in stored)

    moved = book(db, event_type, reschedule_uid=original.uid)
    run_flow(moved)

    db.expire_all()
    assert (
        db.exec(
            select(ScheduledTrigger).where(ScheduledTrigger.booking_id == original.booking_id)
        ).all()
        == []
    )
    assert (
        len(
            db.exec(
                select(ScheduledTrigger).where(ScheduledTrigger.booking_id == moved.booking_id)
            ).all()
        )
        == 2
    )


def test_pending_booking_stores_no_meeting_triggers(db: Session) -> None:
    event_type = make_event_type(db, requires_confirmation=True)
    make_subscription(
        db, "http://127.0.0.1:9/meetings", ["MEETING_STARTED"], event_type_id=event_type.id
    )
    result = book(db, event_type)

    assert run_flow(result).is_completed()
    assert (
        db.exec(
            select(ScheduledTrigger).where(ScheduledTrigger.booking_id == result.booking_id)
        ).all()
        == []
    )


def test_the_run_names_each_delivery_and_never_logs_the_secret(
    db: Session, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:

    event_type = make_event_type(db)
    sub = make_subscription(
        db,
        httpserver.url_for("/hook?token=abc"),
        CREATED,
        event_type_id=event_type.id,
        secret=SECRET,
    )
    httpserver.expect_request("/hook").respond_with_data("", status=500)
    result = book(db, event_type)

    with caplog.at_level("INFO"):
        state = run_flow(result)

    assert state.is_completed()  # the message is handed to the redelivery schedule
    logged = "\n".join(
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.name != "werkzeug"  # the subscriber stand-in's own access log
    )
    assert SECRET not in logged and "token=abc" not in logged
    assert all(SECRET not in (a.error or "") for a in attempts(db, sub.id))
    (delivery,) = settled_task_runs(state.state_details.flow_run_id, "deliver ")
    assert delivery.name == f"deliver BOOKING_CREATED to localhost #{sub.id}"
    assert delivery.state.name == "Redelivery scheduled"


def test_a_delivery_shows_its_outcome_and_webhook_id_in_the_ui(
    db: Session, httpserver: HTTPServer
) -> None:

    event_type = make_event_type(db)
    sub = make_subscription(db, httpserver.url_for("/ok"), CREATED, event_type_id=event_type.id)
    httpserver.expect_request("/ok").respond_with_data("ok")

    state = run_flow(book(db, event_type))

    (delivery,) = settled_task_runs(state.state_details.flow_run_id, "deliver ")
    (attempt,) = attempts(db, sub.id)
    assert delivery.state.message == f"delivered, HTTP 200, {attempt.message_id}"


def test_a_template_that_could_never_render_is_refused_when_saved(db: Session) -> None:
    sub = make_subscription(db, "https://hooks.example/a", CREATED)

    sub.payload_template = "{{#attendees}} never closed"
    db.add(sub)
    with pytest.raises(InvalidTemplate, match="malformed"):
        db.commit()
    db.rollback()

    assert db.get(WebhookSubscription, sub.id).payload_template is None


def test_misbehaving_subscribers_do_not_hold_up_a_healthy_one(
    db: Session, httpserver: HTTPServer
) -> None:
    from local.stack import free_port
    from tests.subscribers import DRIPPING_HEADERS, raw_subscriber

    event_type = make_event_type(db)
    fifty_mb = b"HTTP/1.1 200 OK\r\nContent-Length: 52428800\r\n\r\n" + b"x" * 52_428_800
    httpserver.expect_request("/healthy").respond_with_data("ok")
    httpserver.expect_request("/error").respond_with_data("", status=503)
    httpserver.expect_request("/redirect").respond_with_data(
        "", status=302, headers={"Location": "https://elsewhere.example/"}
    )
    with (
        raw_subscriber(DRIPPING_HEADERS, byte_every=0.05) as dripping,
        raw_subscriber(fifty_mb) as huge,
    ):
        urls = {
            "healthy": httpserver.url_for("/healthy"),
            "error": httpserver.url_for("/error"),
            "redirect": httpserver.url_for("/redirect"),
            "down": f"http://127.0.0.1:{free_port()}/hook",
            "dripping": dripping,
            "huge": huge,
        }
        subs = {
            name: make_subscription(db, url, CREATED, event_type_id=event_type.id)
            for name, url in urls.items()
        }
        state = run_flow(book(db, event_type))

    assert state.is_failed()  # the redirect is a permanent failure of its own step
    (healthy,) = attempts(db, subs["healthy"].id)
    assert (healthy.attempt, healthy.status_code) == (1, 200)
    assert len(received(httpserver, "/healthy")) == 1
    (huge_attempt,) = attempts(db, subs["huge"].id)
    assert huge_attempt.status_code == 200 and len(huge_attempt.response_excerpt) <= 1024
    assert "redirects are not followed" in attempts(db, subs["redirect"].id)[0].error
    for name in ("error", "down", "dripping"):  # retried, then handed to redelivery
        assert len(attempts(db, subs[name].id)) == 4
    assert "within 1 s" in attempts(db, subs["dripping"].id)[0].error
    pending = db.exec(select(WebhookRedelivery.subscription_id)).all()
    assert sorted(pending) == sorted(subs[name].id for name in ("error", "down", "dripping"))


def signed_subscription(db: Session, httpserver: HTTPServer, path: str, secret: str):
    """An event type and a subscription to its BOOKING_CREATED with `secret`, answered 200."""
    event_type = make_event_type(db)
    sub = make_subscription(
        db, httpserver.url_for(path), CREATED, event_type_id=event_type.id, secret=secret
    )
    httpserver.expect_request(path).respond_with_data("ok")
    return event_type, sub


def test_a_rotated_secret_overlaps_the_previous_one_until_it_expires(
    db: Session, httpserver: HTTPServer
) -> None:
    from cli.admin import rotate_secret
    from tasks.delivery.signing import new_secret

    old = new_secret()
    event_type, sub = signed_subscription(db, httpserver, "/rotated", old)
    new = rotate_secret(db, sub.id, timedelta(hours=24))
    assert run_flow(book(db, event_type)).is_completed()

    db.refresh(sub)
    sub.previous_secrets = [{**sub.previous_secrets[0], "expires_at": "2020-01-01T00:00:00+00:00"}]
    db.add(sub)
    db.commit()  # the overlap is over
    assert run_flow(book(db, event_type)).is_completed()

    during, after = received(httpserver, "/rotated")
    body = during.get_data()
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, dict(during.headers))  # a receiver still on the old key
    Webhook(new).verify(body, dict(during.headers))  # and one already on the new key
    assert (
        during.headers["X-Cal-Signature-256"]
        == hmac.new(new.encode(), body, hashlib.sha256).hexdigest()
    )
    Webhook(new).verify(after.get_data(), dict(after.headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.get_data(), dict(after.headers))


def test_a_rotation_with_no_overlap_stops_every_earlier_key(
    db: Session, httpserver: HTTPServer
) -> None:
    from cli.admin import rotate_secret
    from tasks.delivery.signing import new_secret

    s0 = new_secret()
    event_type, sub = signed_subscription(db, httpserver, "/leaked", s0)
    s1 = rotate_secret(db, sub.id, timedelta(hours=24))  # S0 kept for a day
    s2 = rotate_secret(db, sub.id, timedelta(0))  # S1 leaked: nothing earlier may sign
    assert run_flow(book(db, event_type)).is_completed()

    (request,) = received(httpserver, "/leaked")
    body, headers = request.get_data(), dict(request.headers)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(s2).verify(body, headers)
    for earlier in (s0, s1):
        with pytest.raises(WebhookVerificationError):
            Webhook(earlier).verify(body, headers)


def test_a_delivery_that_fails_before_sending_is_logged_as_failed(db: Session) -> None:
    """Whatever fails inside a delivery step before its request, the message shows in
    `deliveries list --failed` and `deliveries recover` finds it: here the subscriber's
    host does not resolve (a transient fault, retried; on 1444d3a only a refusal was
    logged)."""
    import httpx

    from booking.outbox import load_payload
    from booking.timeutil import utcnow
    from cli.admin import deliveries
    from tasks.delivery.message import Subscriber, booking_messages
    from tasks.delivery.recover import failed_messages
    from tasks.delivery.send import send_webhook

    event_type = make_event_type(db)
    url = "http://hooks.nowhere.invalid/in"  # .invalid never resolves (RFC 2606)
    sub = make_subscription(db, url, CREATED, event_type_id=event_type.id)
    result = book(db, event_type)
    payload = load_payload(db, result.event_id)
    (message,) = booking_messages(
        payload, WebhookTrigger.BOOKING_CREATED, [Subscriber(sub.id, "hooks.nowhere.invalid")]
    )

    with pytest.raises(httpx.ConnectError):
        send_webhook(message, attempt_no=1)

    (attempt,) = attempts(db, sub.id)
    assert attempt.status_code is None and attempt.error.startswith("not sent: ConnectError")
    (logged,) = deliveries(db, subscription_id=sub.id, failed=True)
    assert logged.webhook_id == message.message_id
    since = utcnow() - timedelta(minutes=5)
    assert failed_messages(db, sub.id, since, utcnow()) == [[message.message_id]]

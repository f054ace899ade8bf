"""The integrations flow, called directly, against a loopback server standing in for providers."""

import base64
import json

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import Session, select
from werkzeug import Request, Response

from booking.i18n import translate
from booking.models import ChatAccount, Contact, PushDevice
from booking.service import create_booking
from booking.transitions import cancel_booking, confirm_booking
from flows.integrations import booking_post_commit_integrations
from tests.factories import booking_request, make_event_type, make_team_event_type, make_user
from tests.helpers import settled_task_runs

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def providers(configure, httpserver: HTTPServer) -> HTTPServer:
    configure(
        push_base_url=httpserver.url_for("/fcm"),
        push_token="push-token-secret",
        chat_base_url=httpserver.url_for("/chat"),
        chat_api_key="chat-key-secret",
        customerio_track_url=httpserver.url_for("/cio"),
        customerio_site_id="site-1",
        customerio_api_key="cio-key-secret",
        analytics_url=httpserver.url_for("/analytics/events"),
        analytics_api_key="analytics-secret",
    )
    return httpserver


def host_with_device(db: Session, locale: str = "en", token: str = "tok-1", chat: bool = False):
    host = make_user(db, locale=locale)
    db.add(PushDevice(user_id=host.id, token=f"{token}-{host.id}"))
    if chat:
        db.add(ChatAccount(user_id=host.id, account_id=f"acct-{host.id}"))
    db.commit()
    return host


def answer_all_ok(server: HTTPServer) -> None:
    for path in ("/chat/cal_booking", "/analytics/events"):
        server.expect_request(path).respond_with_json({"ok": True})
    server.expect_request(path_prefix("/fcm")).respond_with_json({"name": "m1"})
    server.expect_request(path_prefix("/cio")).respond_with_json({})


def path_prefix(prefix: str):
    import re

    return re.compile(f"^{re.escape(prefix)}.*")


def requests_to(server: HTTPServer, prefix: str) -> list[Request]:
    return [r for r, _ in server.log if r.path.startswith(prefix)]


def run(result):
    return booking_post_commit_integrations(result.event_id, result.uid, return_state=True)


def test_rescheduled_booking_pushes_booking_rescheduled_in_the_host_language(
    db: Session, providers: HTTPServer
) -> None:
    host = host_with_device(db, locale="de")
    event_type = make_event_type(db, host)
    answer_all_ok(providers)
    first = create_booking(booking_request(event_type), session=db)
    moved = create_booking(booking_request(event_type, reschedule_uid=first.uid), session=db)

    assert run(moved).is_completed()

    (push,) = requests_to(providers, "/fcm")
    message = json.loads(push.get_data())["message"]
    assert message["notification"]["title"] == translate("de", "booking_rescheduled")
    assert message["notification"]["title"] == "Buchung verschoben"
    # The body too is German, with the time in the host's zone (UTC here): 15:00 on 14 March.
    assert message["notification"]["body"].startswith("Ada Booker hat ")
    assert "14. März 2031" in message["notification"]["body"]
    assert message["notification"]["body"].endswith(" gebucht")
    assert message["data"] == {
        "bookingId": str(moved.booking_id),
        "bookingUid": moved.uid,
        "status": "UPCOMING",
    }
    assert push.path == "/fcm/v1/projects/booking/messages:send"
    assert push.headers["Authorization"] == "Bearer push-token-secret"


def test_pending_booking_pushes_booking_requested_and_unconfirmed(
    db: Session, providers: HTTPServer
) -> None:
    host = host_with_device(db, locale="fr")
    event_type = make_event_type(db, host, requires_confirmation=True)
    answer_all_ok(providers)
    result = create_booking(booking_request(event_type), session=db)

    assert run(result).is_completed()

    message = json.loads(requests_to(providers, "/fcm")[0].get_data())["message"]
    assert message["notification"]["title"] == "Nouvelle demande de réservation"
    assert message["data"]["status"] == "UNCONFIRMED"
    assert requests_to(providers, "/chat") == []  # pending bookings are not synced to chat


def test_an_invalid_device_token_is_unregistered(db: Session, providers: HTTPServer) -> None:
    host = host_with_device(db)
    event_type = make_event_type(db, host)
    providers.expect_request(path_prefix("/fcm")).respond_with_json(
        {"error": {"code": 404, "status": "UNREGISTERED"}}, status=404
    )
    providers.expect_request(path_prefix("/cio")).respond_with_json({})
    result = create_booking(booking_request(event_type), session=db)

    assert run(result).is_completed()

    assert db.exec(select(PushDevice).where(PushDevice.user_id == host.id)).all() == []


def test_chat_sync_posts_new_and_patches_rescheduled_bookings(
    db: Session, providers: HTTPServer
) -> None:
    host = host_with_device(db, chat=True)
    event_type = make_event_type(db, host)
    answer_all_ok(providers)
    first = create_booking(booking_request(event_type), session=db)
    run(first)
    moved = create_booking(booking_request(event_type, reschedule_uid=first.uid), session=db)
    run(moved)

    post, patch = requests_to(providers, "/chat/cal_booking")
    assert (post.method, patch.method) == ("POST", "PATCH")
    assert post.headers["Authorization"] == "Bearer chat-key-secret"
    body = json.loads(patch.get_data())
    assert body["accountIds"] == [f"acct-{host.id}"]
    assert body["uid"] == moved.uid and body["originalUid"] == first.uid


def test_chat_sync_is_skipped_for_hosts_without_chat_accounts(
    db: Session, providers: HTTPServer
) -> None:
    event_type = make_event_type(db, host_with_device(db))
    answer_all_ok(providers)

    assert run(create_booking(booking_request(event_type), session=db)).is_completed()

    assert requests_to(providers, "/chat") == []


def test_every_host_of_a_team_booking_is_identified_once(
    db: Session, providers: HTTPServer
) -> None:
    hosts = [make_user(db), make_user(db), make_user(db)]
    event_type = make_team_event_type(db, hosts)
    answer_all_ok(providers)

    assert run(create_booking(booking_request(event_type), session=db)).is_completed()

    identified = requests_to(providers, "/cio")
    assert sorted(r.path for r in identified) == sorted(
        f"/cio/api/v1/customers/{h.id}" for h in hosts
    )
    assert all(r.method == "PUT" for r in identified)
    expected_auth = "Basic " + base64.b64encode(b"site-1:cio-key-secret").decode()
    assert {r.headers["Authorization"] for r in identified} == {expected_auth}
    attributes = json.loads(identified[0].get_data())
    assert attributes["bookings_count"] == 1 and "@" in attributes["email"]


def test_contact_sync_is_idempotent(db: Session, providers: HTTPServer) -> None:
    host = make_user(db)
    event_type = make_event_type(db, host)
    answer_all_ok(providers)
    result = create_booking(
        booking_request(
            event_type, guests=[{"name": "Guest", "email": "Guest@Ex.example", "time_zone": "UTC"}]
        ),
        session=db,
    )

    run(result)
    run(result)

    db.expire_all()
    contacts = db.exec(select(Contact).where(Contact.owner_id == host.id)).all()
    assert "guest@ex.example" in {c.email for c in contacts}
    assert len(contacts) == 2
    assert all(c.last_booking_uid == result.uid for c in contacts)


def test_analytics_fires_only_with_a_tracking_id_and_once_across_a_retry(
    db: Session, providers: HTTPServer
) -> None:
    event_type = make_event_type(db)
    counted: dict[str, int] = {}
    calls: list[str] = []

    def analytics(request: Request) -> Response:
        key = request.headers["Idempotency-Key"]
        calls.append(key)
        counted[key] = 1  # the provider counts one event per idempotency key
        if len(calls) == 1:
            return Response("recorded, but the answer got lost", status=502)
        return Response("{}", status=200)

    providers.expect_request("/analytics/events").respond_with_handler(analytics)
    providers.expect_request(path_prefix("/cio")).respond_with_json({})
    untracked = create_booking(booking_request(event_type), session=db)
    tracked = create_booking(booking_request(event_type, tracking_id="gclid-42"), session=db)

    assert run(untracked).is_completed()
    assert calls == []
    assert run(tracked).is_completed()

    assert calls == [f"{tracked.uid}:analytics"] * 2  # retried once ...
    assert counted == {f"{tracked.uid}:analytics": 1}  # ... and counted once


def test_one_provider_down_fails_only_its_own_step(db: Session, providers: HTTPServer) -> None:

    host = host_with_device(db, chat=True)
    event_type = make_event_type(db, host)
    providers.expect_request(path_prefix("/cio")).respond_with_data("down", status=500)
    answer_all_ok(providers)
    result = create_booking(booking_request(event_type, tracking_id="t-1"), session=db)

    state = run(result)

    assert state.is_failed()
    assert len(requests_to(providers, "/cio")) == 3  # first attempt and two retries
    assert len(requests_to(providers, "/fcm")) == 1
    assert len(requests_to(providers, "/chat")) == 1
    assert len(requests_to(providers, "/analytics")) == 1
    runs = settled_task_runs(state.state_details.flow_run_id)
    failed = sorted(r.name for r in runs if r.state.is_failed())
    assert len(failed) == 1 and failed[0].startswith("identify hosts in Customer.io")
    assert db.exec(select(Contact).where(Contact.owner_id == host.id)).first() is not None


def test_no_step_prints_to_stdout(
    db: Session, providers: HTTPServer, capfd: pytest.CaptureFixture
) -> None:
    event_type = make_event_type(db, host_with_device(db, chat=True))
    answer_all_ok(providers)
    result = create_booking(booking_request(event_type, tracking_id="t"), session=db)
    capfd.readouterr()

    assert run(result).is_completed()

    out, err = capfd.readouterr()
    assert out == ""
    for secret in ("push-token-secret", "chat-key-secret", "cio-key-secret", "analytics-secret"):
        assert secret not in err


def test_a_confirmation_then_a_cancellation_reach_the_host_and_the_providers(
    db: Session, providers: HTTPServer
) -> None:
    host = host_with_device(db, locale="de", chat=True)
    event_type = make_event_type(db, host, requires_confirmation=True)
    answer_all_ok(providers)
    providers.expect_request(path_prefix("/chat/cal_booking/")).respond_with_json({"ok": True})
    booked = create_booking(booking_request(event_type, tracking_id="t-1"), session=db)
    assert run(booked).is_completed()
    assert requests_to(providers, "/chat") == [] and requests_to(providers, "/analytics") == []

    confirmed = confirm_booking(booked.uid, session=db)
    assert run(confirmed).is_completed()
    cancelled = cancel_booking(booked.uid, session=db, reason="krank")
    assert run(cancelled).is_completed()

    titles = [
        json.loads(r.get_data())["message"]["notification"]["title"]
        for r in requests_to(providers, "/fcm")
    ]
    assert titles == ["Neue Buchungsanfrage", "Buchung bestätigt", "Buchung storniert"]
    last_push = json.loads(requests_to(providers, "/fcm")[-1].get_data())["message"]
    assert last_push["data"]["status"] == "CANCELLED"
    assert "storniert" in last_push["notification"]["body"]
    chat = [(r.method, r.path) for r in requests_to(providers, "/chat")]
    assert chat == [("POST", "/chat/cal_booking"), ("DELETE", f"/chat/cal_booking/{booked.uid}")]
    events = [json.loads(r.get_data())["event"] for r in requests_to(providers, "/analytics")]
    assert events == ["booking_lead", "booking_cancelled"]
    assert len(requests_to(providers, "/cio")) == 1  # identified once, when confirmed

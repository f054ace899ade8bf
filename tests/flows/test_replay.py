"""`booking replay --message`: one message sent again with its original id and body."""

import re

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import Session, col, select
from typer.testing import CliRunner
from werkzeug import Request

from booking.models import WebhookDelivery
from booking.service import create_booking
from cli.main import app
from flows.webhooks import booking_post_commit_webhooks
from tests.factories import booking_request, make_event_type, make_subscription

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def delivered_once(db: Session, httpserver: HTTPServer) -> Request:
    """A booking's BOOKING_CREATED, delivered to a loopback subscriber; its request."""
    event_type = make_event_type(db)
    make_subscription(
        db, httpserver.url_for("/hook"), ["BOOKING_CREATED"], event_type_id=event_type.id
    )
    httpserver.expect_request("/hook").respond_with_data("ok")
    booked = create_booking(booking_request(event_type), session=db)
    booking_post_commit_webhooks(booked.event_id, booked.uid)
    (first,) = [request for request, _ in httpserver.log]
    return first


def test_a_delivered_message_is_sent_again_with_its_webhook_id(
    db: Session, httpserver: HTTPServer
) -> None:
    first = delivered_once(db, httpserver)
    webhook_id = first.headers["webhook-id"]

    result = CliRunner().invoke(app, ["replay", "--message", webhook_id])

    assert result.exit_code == 0, result.output
    assert re.search(rf"message {webhook_id}: delivered, HTTP 200", result.output)
    first_again, second = [request for request, _ in httpserver.log]
    assert second.headers["webhook-id"] == webhook_id
    assert second.get_data() == first.get_data()
    log = db.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id))).all()
    assert [(entry.message_id, entry.attempt) for entry in log] == [
        (webhook_id, 1),
        (webhook_id, 2),
    ]


def test_an_unknown_message_is_a_clear_error(db: Session) -> None:
    result = CliRunner().invoke(app, ["replay", "--message", "msg_nope"])

    assert result.exit_code == 2
    assert "no message with this webhook-id" in result.output


def test_a_resend_the_shells_settings_refuse_changes_nothing_in_the_log(
    db: Session, httpserver: HTTPServer, configure
) -> None:
    first = delivered_once(db, httpserver)
    configure(webhook_allowed_networks="[]")  # a shell without the worker's settings

    result = CliRunner().invoke(app, ["replay", "--message", first.headers["webhook-id"]])

    assert result.exit_code == 1
    assert "not sent" in result.output and "internal address" in result.output
    assert len(httpserver.log) == 1
    db.expire_all()
    log = db.exec(select(WebhookDelivery)).all()
    assert [(entry.attempt, entry.status_code) for entry in log] == [(1, 200)]

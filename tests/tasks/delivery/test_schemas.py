import json
import shutil
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from booking.enums import NO_SHOW_TRIGGERS, WebhookTrigger
from booking.payload import PaymentSnapshot
from tasks.delivery import schemas
from tasks.delivery.body import booking_data, envelope
from tests.factories import snapshot
from tests.schemas import check_webhook_bodies, schema_errors


def body(trigger: WebhookTrigger) -> dict:
    payload = snapshot(reschedule=True).model_copy(
        update={
            "responses": {"notes": "bring slides", "company": "Acme"},
            "cancelled_by": "attendee",
            "payment": PaymentSnapshot(id="pi_1", amount=4500, currency="usd"),
        }
    )
    data = booking_data(payload, trigger, no_show=["a@x.example"])
    return envelope(trigger, "2030-12-01T00:00:00Z", data)


def test_the_checked_in_schemas_are_the_ones_the_models_make() -> None:
    assert schemas.main(["--check"]) == 0, "run: python -m tasks.delivery.schemas"
    assert sorted(p.stem for p in schemas.SCHEMA_DIR.glob("*.json")) == sorted(WebhookTrigger)


def test_the_check_fails_on_a_stale_or_unknown_schema_and_writing_mends_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    copy = shutil.copytree(schemas.SCHEMA_DIR, tmp_path / "schemas")
    monkeypatch.setattr(schemas, "SCHEMA_DIR", copy)
    stale = copy / "BOOKING_CREATED.json"
    stale.write_text(stale.read_text().replace('"uid"', '"bookingUid"'))
    (copy / "BOOKING_MOVED.json").write_text("{}")

    assert schemas.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "BOOKING_CREATED.json" in err and "BOOKING_MOVED.json" in err
    assert schemas.main([]) == 0
    assert schemas.main(["--check"]) == 0
    assert not (copy / "BOOKING_MOVED.json").exists()


@pytest.mark.parametrize("trigger", list(WebhookTrigger))
def test_every_triggers_body_conforms_to_its_published_schema(trigger: WebhookTrigger) -> None:
    sent = body(trigger)

    assert schema_errors(sent) == []
    assert sent["payload"]["triggerEvent"] == trigger.value
    assert ("noShow" in sent["payload"]) == (trigger in NO_SHOW_TRIGGERS)
    assert ("cancelledBy" in sent["payload"]) == (trigger == WebhookTrigger.BOOKING_CANCELLED)


def test_a_schema_refuses_what_its_trigger_does_not_send() -> None:
    created = body(WebhookTrigger.BOOKING_CREATED)
    moved = json.loads(json.dumps(created))
    del moved["payload"]["uid"]
    moved["payload"]["paid"] = True
    moved["payload"]["startTime"] = "2031-01-01 09:00"
    moved["triggerEvent"] = "BOOKING_CANCELLED"

    errors = schema_errors(moved)

    assert any("'uid' is a required property" in e for e in errors)
    assert any("'paid' was unexpected" in e for e in errors)
    assert any(e.startswith("payload/startTime") for e in errors)
    assert any(e.startswith("payload/triggerEvent") for e in errors)
    assert schema_errors({**created, "triggerEvent": "BOOKING_MOVED"}) == [
        "no published schema for triggerEvent 'BOOKING_MOVED'"
    ]


def test_a_payload_field_the_model_does_not_know_is_refused_before_sending() -> None:
    data = body(WebhookTrigger.BOOKING_CREATED)["payload"]

    with pytest.raises(ValidationError, match="extra"):
        schemas.payload_json(WebhookTrigger.BOOKING_CREATED, {**data, "internalNote": "x"})
    with pytest.raises(ValidationError, match="noShow"):
        schemas.payload_json(WebhookTrigger.AFTER_HOSTS_CAL_VIDEO_NO_SHOW, {**data, "noShow": []})


def test_the_subscribers_check_fails_on_a_received_body_that_breaks_its_schema(
    httpserver,
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    good = body(WebhookTrigger.BOOKING_PAID)
    bad = json.loads(json.dumps(good))
    bad["payload"]["price"] = "45.00"
    for sent in (good, bad):
        httpx.post(httpserver.url_for("/hook"), json=sent, headers={"webhook-id": "msg_1"})

    requests = [request for request, _ in httpserver.log]
    with pytest.raises(AssertionError, match="BOOKING_PAID to /hook: payload/price"):
        check_webhook_bodies(requests)
    assert check_webhook_bodies(requests[:1]) == 1
    httpserver.clear_log()  # the fixture's own check, as the test ends, sees nothing

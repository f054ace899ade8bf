"""The scheduling flow and the periodic delivery, against real SMTP and HTTP servers."""

import contextvars
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from booking.enums import BookingStatus, WorkStatus
from booking.models import Attendee, Booking, ScheduledTrigger, WorkflowReminder
from booking.service import create_booking
from cli.main import app
from flows.deliver_due_work import deliver_due_work
from flows.scheduling import booking_post_commit_scheduling
from local.stack import free_port
from tests.factories import (
    booking_request,
    make_event_type,
    make_subscription,
    make_user,
    make_workflow,
)
from tests.helpers import Inbox

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
START = datetime(2031, 3, 14, 15, 0, tzinfo=UTC)  # booking_request's default start


def book(db: Session, event_type, **kw):
    result = create_booking(booking_request(event_type, **kw), session=db)
    state = booking_post_commit_scheduling(result.event_id, result.uid, return_state=True)
    assert state.is_completed(), state.message
    return result


def reminders(db: Session, booking_id: int) -> list[WorkflowReminder]:
    db.expire_all()
    return list(
        db.exec(
            select(WorkflowReminder)
            .where(WorkflowReminder.booking_id == booking_id)
            .order_by(col(WorkflowReminder.id))
        )
    )


def triggers(db: Session, booking_id: int) -> list[ScheduledTrigger]:
    db.expire_all()
    return list(db.exec(select(ScheduledTrigger).where(ScheduledTrigger.booking_id == booking_id)))


def test_confirmed_booking_gets_the_mandatory_reminder_once(db: Session) -> None:
    event_type = make_event_type(db)
    result = book(db, event_type)
    booking_post_commit_scheduling(result.event_id, result.uid)  # again: nothing new

    (reminder,) = reminders(db, result.booking_id)
    assert reminder.is_mandatory and reminder.due_at == START - timedelta(hours=1)
    assert reminder.locale == "de" and reminder.time_zone == "Europe/Berlin"


def test_a_booking_needing_confirmation_gets_no_reminders(db: Session) -> None:
    event_type = make_event_type(db, requires_confirmation=True)
    make_workflow(db, event_type, "BEFORE_EVENT", "EMAIL_HOST", hours=24)

    assert reminders(db, book(db, event_type).booking_id) == []


def test_a_close_attendee_workflow_replaces_the_mandatory_reminder(db: Session) -> None:
    event_type = make_event_type(db)
    make_workflow(db, event_type, "BEFORE_EVENT", "EMAIL_ATTENDEE", hours=2)

    (reminder,) = reminders(db, book(db, event_type).booking_id)

    assert not reminder.is_mandatory and reminder.due_at == START - timedelta(hours=2)


def test_workflow_triggers_and_a_reschedule(db: Session) -> None:
    event_type = make_event_type(db)
    make_workflow(db, event_type, "NEW_EVENT", "EMAIL_HOST")
    make_workflow(db, event_type, "RESCHEDULE_EVENT", "EMAIL_HOST")
    make_workflow(db, event_type, "AFTER_EVENT", "EMAIL_ATTENDEE", hours=1)
    first = book(db, event_type)
    assert sorted(r.workflow_step_id is None for r in reminders(db, first.booking_id)) == [
        False,
        False,
        True,
    ]  # NEW_EVENT, AFTER_EVENT and the mandatory one

    moved = book(db, event_type, reschedule_uid=first.uid)

    assert {r.status for r in reminders(db, first.booking_id)} == {WorkStatus.CANCELLED}
    kinds = [r.due_at for r in reminders(db, moved.booking_id) if not r.is_mandatory]
    assert len(kinds) == 2  # RESCHEDULE_EVENT and AFTER_EVENT; no NEW_EVENT on a reschedule


def test_no_show_checks_are_due_at_start_plus_offset_for_confirmed_bookings(db: Session) -> None:
    event_type = make_event_type(db)
    make_subscription(
        db,
        "http://127.0.0.1:9/noshow",
        ["AFTER_HOSTS_CAL_VIDEO_NO_SHOW"],
        event_type_id=event_type.id,
        time=15,
        time_unit="MINUTE",
    )
    pending_type = make_event_type(db, requires_confirmation=True)
    make_subscription(
        db,
        "http://127.0.0.1:9/noshow2",
        ["AFTER_HOSTS_CAL_VIDEO_NO_SHOW"],
        event_type_id=pending_type.id,
        time=15,
        time_unit="MINUTE",
    )

    (check,) = triggers(db, book(db, event_type).booking_id)
    assert check.due_at == START + timedelta(minutes=15)
    assert triggers(db, book(db, pending_type).booking_id) == []


def test_due_work_sends_exactly_what_is_due_and_nothing_twice(
    db: Session, smtp: Inbox, httpserver: HTTPServer
) -> None:
    event_type = make_event_type(db)
    make_subscription(
        db,
        httpserver.url_for("/meetings"),
        ["MEETING_STARTED", "MEETING_ENDED"],
        event_type_id=event_type.id,
        secret="s3",
    )
    httpserver.expect_request("/meetings").respond_with_data("ok")
    result = book(db, event_type)
    from flows.webhooks import booking_post_commit_webhooks

    booking_post_commit_webhooks(result.event_id, result.uid)  # stores the meeting triggers

    first = deliver_due_work(now=START, return_state=True)  # reminder and MEETING_STARTED due
    second = deliver_due_work(now=START, return_state=True)

    assert first.is_completed() and sweep_counts(first)["sent"] == 2
    assert sweep_counts(second)["claimed"] == 0
    (mail,) = smtp.messages
    assert mail["To"].endswith("@bookers.example")
    assert "14. März 2031, 16:00:00 MEZ" in mail.get_payload(decode=True).decode()  # Berlin
    (hook,) = [r for r, _ in httpserver.log]
    body = hook.get_data()
    assert json.loads(body)["triggerEvent"] == "MEETING_STARTED"
    assert hook.headers["X-Cal-Signature-256"] == hmac.new(b"s3", body, hashlib.sha256).hexdigest()
    started, ended = sorted(triggers(db, result.booking_id), key=lambda t: t.due_at)
    assert (started.status, ended.status) == (WorkStatus.SENT, WorkStatus.PENDING)


def test_items_of_a_cancelled_booking_are_skipped(db: Session, smtp: Inbox) -> None:
    event_type = make_event_type(db)
    result = book(db, event_type)
    booking = db.get(Booking, result.booking_id)
    booking.status = BookingStatus.CANCELLED
    db.add(booking)
    db.commit()

    state = deliver_due_work(now=START, return_state=True)

    assert sweep_counts(state)["skipped"] == 1 and smtp.messages == []
    (reminder,) = reminders(db, result.booking_id)
    assert reminder.status == WorkStatus.SKIPPED and "CANCELLED" in reminder.skip_reason


def test_a_failed_send_is_retried_on_a_later_sweep_up_to_the_limit(db: Session, configure) -> None:
    configure(smtp_port=str(free_port()), due_max_attempts="2")  # nothing listens there
    result = book(db, make_event_type(db))

    # The mail server being down is the sweep's expected outcome, not its failure: the run
    # completes (no page for every outage) and its table says what failed.
    state = deliver_due_work(now=START, return_state=True)
    assert state.is_completed(), state.message
    assert sweep_counts(state)["failed"] == 1 and "1 failed" in state.message
    (reminder,) = reminders(db, result.booking_id)
    assert reminder.status == WorkStatus.PENDING and reminder.attempts == 1
    assert "Connection" in reminder.last_error

    deliver_due_work(now=START, return_state=True)
    (reminder,) = reminders(db, result.booking_id)
    assert reminder.status == WorkStatus.FAILED and reminder.attempts == 2
    assert sweep_counts(deliver_due_work(now=START, return_state=True))["claimed"] == 0


def test_sms_reminder_goes_through_the_provider_and_bad_numbers_fail(
    db: Session, configure, httpserver: HTTPServer
) -> None:
    configure(
        sms_base_url=httpserver.url_for("/sms"), sms_account_sid="AC1", sms_auth_token="sms-secret"
    )
    httpserver.expect_request(
        "/sms/2010-04-01/Accounts/AC1/Messages.json", method="POST"
    ).respond_with_json({"sid": "SM1"}, status=201)
    event_type = make_event_type(db)
    make_workflow(db, event_type, "BEFORE_EVENT", "SMS_NUMBER", hours=1, send_to="+4915112345678")
    make_workflow(db, event_type, "BEFORE_EVENT", "SMS_NUMBER", hours=1, send_to="0151-not-e164")
    result = book(db, event_type)

    deliver_due_work(now=START, return_state=True)

    (sms,) = [r for r, _ in httpserver.log]
    assert sms.form["To"] == "+4915112345678"
    by_recipient = {r.recipient: r for r in reminders(db, result.booking_id)}
    assert by_recipient["+4915112345678"].status == WorkStatus.SENT
    assert "E.164" in by_recipient["0151-not-e164"].last_error


def test_no_show_fires_only_for_the_absent_party(
    db: Session, configure, httpserver: HTTPServer, smtp: Inbox
) -> None:
    host = make_user(db)
    event_type = make_event_type(db, host)
    for trigger in ("AFTER_HOSTS_CAL_VIDEO_NO_SHOW", "AFTER_GUESTS_CAL_VIDEO_NO_SHOW"):
        make_subscription(
            db,
            httpserver.url_for(f"/{trigger}"),
            [trigger],
            event_type_id=event_type.id,
            time=10,
            time_unit="MINUTE",
        )
    configure(attendance_base_url=httpserver.url_for("/daily"))
    result = book(db, event_type)
    httpserver.expect_request("/daily/v1/meetings").respond_with_json(
        {"data": [{"participants": [{"user_id": host.email, "user_name": host.name}]}]}
    )
    httpserver.expect_request(path_any()).respond_with_data("ok")

    state = deliver_due_work(now=START + timedelta(minutes=10), return_state=True)

    assert state.is_completed() and sweep_counts(state)["skipped"] == 1  # the host attended
    fired = [r for r, _ in httpserver.log if not r.path.startswith("/daily")]
    assert [r.path for r in fired] == ["/AFTER_GUESTS_CAL_VIDEO_NO_SHOW"]
    db.expire_all()
    (guest,) = db.exec(select(Attendee).where(Attendee.booking_id == result.booking_id))
    assert guest.no_show is True
    assert db.get(Booking, result.booking_id).no_show_host is None
    # A replay sends the same body: who did not join, as the first sending recorded it.
    (sent,) = fired
    replayed = CliRunner().invoke(app, ["replay", "--message", sent.headers["webhook-id"]])
    assert replayed.exit_code == 0, replayed.output
    again = [r for r, _ in httpserver.log if not r.path.startswith("/daily")][-1]
    assert json.loads(again.get_data())["payload"]["noShow"] == [{"email": guest.email.lower()}]
    assert again.get_data() == sent.get_data()


def path_any():
    import re

    return re.compile(".*")


def test_two_concurrent_sweeps_deliver_each_item_once(
    db: Session, smtp: Inbox, database_url: str
) -> None:
    event_type = make_event_type(db)
    results = [book(db, event_type) for _ in range(6)]
    states = []

    def sweep() -> None:
        states.append(deliver_due_work(now=START, return_state=True))

    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(sweep,)) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(smtp.messages) == len(results)
    assert len({m["Message-ID"] for m in smtp.messages}) == len(results)
    assert sum(sweep_counts(s)["sent"] for s in states) == len(results)


def sweep_counts(state) -> dict[str, int]:
    """What the sweep's table in the UI says it claimed, sent, skipped and failed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    if not artifacts:  # a sweep that found nothing due shows no table
        return {"claimed": 0, "sent": 0, "skipped": 0, "failed": 0}
    (artifact,) = artifacts
    (counts,) = json.loads(artifact.data)
    return counts

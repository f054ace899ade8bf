"""The `booking` command, run as an operator would, against SQLite and PostgreSQL."""

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import typer
from sqlmodel import Session, select
from standardwebhooks import Webhook
from typer.core import TyperGroup
from typer.testing import CliRunner

from booking.models import WebhookDelivery, WebhookSubscription
from booking.service import create_booking
from booking.timeutil import utcnow
from cli.main import app
from tasks.delivery.signing import signed_headers
from tests.factories import booking_request, make_event_type

runner = CliRunner()


@pytest.fixture
def booking_cli(configure):
    configure()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_every_command_has_help(booking_cli) -> None:
    for command in (
        [], ["db"], ["subscriptions"], ["subscriptions", "add"], ["deliveries", "list"],
        ["replay"], ["outbox", "status"], ["outbox", "list"], ["users", "add"],
        ["event-types", "add"], ["devices", "add"],
    ):  # fmt: skip
        assert "Usage" in booking_cli(*command, "--help")
    words = " ".join(booking_cli("users", "--help").replace("│", " ").split())
    assert "demo and a first try-out" in words


def test_set_up_a_host_and_subscribe_with_a_standard_webhooks_secret(
    booking_cli, session: Session, tmp_path
) -> None:
    assert "newest schema" in booking_cli("db", "upgrade")
    user = re.search(r"user (\d+)", booking_cli(
        "users", "add", "--name", "Dana", "--email", "dana@x.example", "--username", "dana",
        "--time-zone", "Europe/Berlin", "--locale", "de",
    )).group(1)  # fmt: skip
    event_type = re.search(r"event type (\d+)", booking_cli(
        "event-types", "add", "--owner", user, "--slug", "intro", "--title", "Intro",
    )).group(1)  # fmt: skip
    booking_cli("devices", "add", "--user", user, "--token", "device-token-1")
    template = tmp_path / "body.mustache"
    template.write_text('{"who": "{{attendees.0.name}}"}')

    out = booking_cli(
        "subscriptions", "add", "--url", "https://hooks.example/in", "--triggers",
        "BOOKING_CREATED,meeting_ended", "--event-type", event_type,
        "--template", str(template),
    )  # fmt: skip

    assert "warning: host hooks.example does not resolve" in out  # saved all the same
    subscription_id = int(re.search(r"subscription (\d+)", out).group(1))
    secret = re.search(r"secret (whsec_\S+)", out).group(1)
    stored = session.get(WebhookSubscription, subscription_id)
    assert stored.secret == secret and stored.triggers == ["BOOKING_CREATED", "MEETING_ENDED"]
    headers = signed_headers(
        message_id="msg_1", timestamp=int(utcnow().timestamp()), body=b"{}", secret=secret,
        content_type="application/json",
    )  # fmt: skip
    Webhook(secret).verify(b"{}", headers)  # what a receiver does with the printed secret
    listed = booking_cli("subscriptions", "list")
    assert "hooks.example" in listed and "whsec_" not in listed and "/in" not in listed

    booking_cli("subscriptions", "disable", str(subscription_id))
    session.refresh(stored)
    assert not stored.active and "operator" in stored.deactivated_reason
    booking_cli("subscriptions", "enable", str(subscription_id))
    rotated = re.search(r"secret (whsec_\S+)", booking_cli(
        "subscriptions", "rotate-secret", str(subscription_id)
    )).group(1)  # fmt: skip
    session.refresh(stored)
    assert stored.active and stored.secret == rotated != secret
    assert "2 keys, oldest expires" in booking_cli("subscriptions", "list")  # the overlap
    booking_cli("subscriptions", "rotate-secret", str(subscription_id),
                "--expire-previous-after", "0")  # fmt: skip
    assert "\t1 key\n" in booking_cli("subscriptions", "list")  # every earlier key dropped
    assert "not a duration" in booking_cli(
        "subscriptions", "rotate-secret", str(subscription_id), "--expire-previous-after",
        "soon", code=2,
    )  # fmt: skip
    assert "5/s" in booking_cli("subscriptions", "update", str(subscription_id), "--rate", "5")
    assert "\t5/s" in booking_cli("subscriptions", "list")
    assert "above 0" in booking_cli(
        "subscriptions", "update", str(subscription_id), "--rate", "-1", code=2
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["users", "add", "--name", "X", "--email", "not-an-email"], "valid email"),
        (["event-types", "add", "--owner", "999", "--slug", "s", "--title", "T"], "no user"),
        (
            ["subscriptions", "add", "--url", "ftp://x", "--trigger", "BOOKING_CREATED",
             "--user", "1"],
            "http(s)",
        ),
        (
            ["subscriptions", "add", "--url", "http://169.254.169.254/", "--trigger",
             "BOOKING_CREATED", "--user", "1"],
            "resolves to an internal address 169.254.169.254",
        ),
        (
            ["subscriptions", "add", "--url", "http://10.0.0.5/in", "--trigger",
             "BOOKING_CREATED", "--user", "1"],
            "internal address",
        ),
        (
            ["subscriptions", "add", "--url", "https://x.example", "--trigger", "NOPE",
             "--user", "1"],
            "triggers are",
        ),
        (["subscriptions", "add", "--url", "https://x.example", "--trigger", "BOOKING_CREATED"],
         "exactly one scope"),
        (["subscriptions", "disable", "424242"], "no subscription"),
        (["replay"], "--booking UID or --message"),
        (["deliveries", "list", "--since", "yesterday"], "neither a time (ISO 8601) nor"),
        (["subscriptions", "disable", "abc"], "Invalid value for 'subscription'"),
        (["subscriptions", "add", "--url", "https://x.example", "--trigger", "BOOKING_CREATED",
          "--user", "1", "--template", "/nonexistent"], "'/nonexistent' does not exist"),
        (["deliveries", "recover", "--subscription", "1", "--since", "notadate"],
         "Invalid value for '--since'"),
        (["subscriptions", "nosuch"], "No such command 'nosuch'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_error_with_exit_code_2(
    booking_cli, session: Session, args: list[str], says: str
) -> None:
    make_event_type(session)  # a user with id 1 exists
    before = session.exec(select(WebhookSubscription)).all()

    output = booking_cli(*args, code=2)

    assert says in output
    assert output.startswith("error: ") and output.count("\n") == 1, output  # one line
    assert session.exec(select(WebhookSubscription)).all() == before


def leaf_commands(group: TyperGroup, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from leaf_commands(command, (*path, name))
        else:
            yield (*path, name)


def test_every_command_answers_bad_input_with_one_line(booking_cli) -> None:
    commands = list(leaf_commands(typer.main.get_command(app)))
    assert len(commands) >= 16
    for command in commands:
        output = booking_cli(*command, "--no-such-option", code=2)
        assert output.startswith("error: No such option: --no-such-option")
        assert output.endswith(f" {' '.join(command)} --help)\n") and output.count("\n") == 1


def test_deliveries_and_outbox_show_what_an_operator_needs(booking_cli, session: Session) -> None:
    event_type = make_event_type(session)
    booked = create_booking(booking_request(event_type), session=session)
    sub_id = re.search(r"subscription (\d+)", booking_cli(
        "subscriptions", "add", "--url", "https://hooks.example/in", "--trigger",
        "BOOKING_CREATED", "--user", str(event_type.owner_id),
    )).group(1)  # fmt: skip
    for attempt, status in ((1, 503), (2, 200)):
        session.add(
            WebhookDelivery(
                subscription_id=int(sub_id), booking_uid=booked.uid,
                trigger_event="BOOKING_CREATED", message_id="msg_ok", attempt=attempt,
                status_code=status, duration_ms=5,
            )
        )  # fmt: skip
    session.add(
        WebhookDelivery(
            subscription_id=int(sub_id), booking_uid=booked.uid, trigger_event="MEETING_ENDED",
            message_id="msg_bad", attempt=1, status_code=None, duration_ms=5,
            error="ConnectError: refused",
        )
    )  # fmt: skip
    session.commit()

    every = booking_cli("deliveries", "list", "--booking", booked.uid)
    failed = booking_cli("deliveries", "list", "--failed")
    later = booking_cli(
        "deliveries", "list", "--since", (utcnow() + timedelta(hours=1)).isoformat()
    )

    assert "msg_ok\tBOOKING_CREATED" in every and "2 attempt(s)\t200" in every
    assert "msg_bad" in failed and "msg_ok" not in failed and "ConnectError" in failed
    assert later == ""
    # A duration back from now, as an operator types it after an incident.
    last_hour = booking_cli("deliveries", "list", "--failed", "--since", "1h")
    assert "msg_bad" in last_hour and "msg_ok" not in last_hour
    status = booking_cli("outbox", "status")
    assert "pending\t1" in status and "running\t0" in status
    assert booked.event_id in booking_cli("outbox", "list", "--pending")
    assert "pending" in booking_cli("outbox", "list")
    assert f"{booked.event_id}\t{booked.uid}\tcreated\t" in booking_cli("outbox", "list")


@pytest.mark.integration
def test_an_operators_command_prints_only_its_own_lines(configure, prefect_server) -> None:
    """`booking retention run` runs its flow in the operator's shell; Prefect's INFO lines
    about that run go to the UI, not to the terminal."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    configure()
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
    booking = Path(sys.executable).parent / "booking"

    done = subprocess.run(
        [str(booking), "retention", "run", "--dry-run"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert all(line.startswith("would delete\t") for line in done.stdout.splitlines())
    assert "flow runs" in done.stdout

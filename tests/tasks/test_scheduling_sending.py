"""Email over SMTP against a real server on loopback: one connection for a step's emails."""

import smtplib
import time

import pytest

from booking.settings import Settings
from tasks.scheduling.sending import Mailer, send_email
from tests.helpers import smtp_server

# A connection holds a slot of the `reminders` cap, kept in the bookings database.
pytestmark = pytest.mark.usefixtures("configure")


def settings_for(port: int) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=port)


def test_a_mailers_emails_share_one_connection_each_with_its_message_id() -> None:
    with smtp_server() as inbox, Mailer(settings_for(inbox.port)) as mailer:
        mailer.send(to="ada@example.com", subject="One", body="first", message_key="k-1")
        mailer.send(to="host@example.com", subject="Two", body="second", message_key="k-2")
    assert [m["To"] for m in inbox.messages] == ["ada@example.com", "host@example.com"]
    assert len(set(inbox.peers)) == 1
    assert [m["Message-ID"].split("@")[0].split(".")[-1] for m in inbox.messages] == [
        "k-1",
        "k-2",
    ]


def test_send_email_uses_a_connection_of_its_own() -> None:
    with smtp_server() as inbox:
        for n in range(2):
            send_email(
                settings_for(inbox.port),
                to="a@example.com",
                subject="s",
                body="b",
                message_key=f"k-{n}",
            )
    assert len(inbox.messages) == 2
    assert len(set(inbox.peers)) == 2


def test_a_kept_connection_the_server_closed_is_opened_again_for_the_next_email() -> None:
    with (
        smtp_server(hang_up_after_each=True) as inbox,
        Mailer(settings_for(inbox.port)) as mailer,
    ):
        mailer.send(to="ada@example.com", subject="One", body="first", message_key="k-1")
        time.sleep(0.3)  # the server hangs up
        mailer.send(to="host@example.com", subject="Two", body="second", message_key="k-2")
    assert [m["Subject"] for m in inbox.messages] == ["One", "Two"]
    assert len(set(inbox.peers)) == 2


def test_a_first_email_that_cannot_connect_fails_and_the_next_tries_again() -> None:
    with smtp_server() as inbox:
        port = inbox.port
    # Nothing listens on `port` now.
    with Mailer(settings_for(port)) as mailer:
        with pytest.raises(ConnectionRefusedError):
            mailer.send(to="ada@example.com", subject="s", body="b", message_key="k-1")
        with pytest.raises(ConnectionRefusedError):
            mailer.send(to="host@example.com", subject="s", body="b", message_key="k-2")


def test_a_refused_recipient_fails_only_its_own_email() -> None:
    with smtp_server() as inbox, Mailer(settings_for(inbox.port)) as mailer:
        inbox.unknown.add("gone@example.com")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            mailer.send(to="gone@example.com", subject="s", body="b", message_key="k-1")
        mailer.send(to="host@example.com", subject="ok", body="b", message_key="k-2")
    assert [m["Subject"] for m in inbox.messages] == ["ok"]


def test_an_open_connection_holds_one_reminders_slot_until_it_is_closed(session) -> None:
    from sqlmodel import func, select

    from booking.models import ProviderLease

    def held() -> int:
        session.expire_all()
        return session.exec(select(func.count()).select_from(ProviderLease)).one()

    with smtp_server() as inbox, Mailer(settings_for(inbox.port)) as mailer:
        assert held() == 0  # nothing taken before the first email
        mailer.send(to="a@example.com", subject="One", body="1", message_key="k1")
        mailer.send(to="b@example.com", subject="Two", body="2", message_key="k2")
        assert held() == 1  # one connection, one slot, for both emails
    assert held() == 0

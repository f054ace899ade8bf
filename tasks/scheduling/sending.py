"""Senders of due work: reminder emails over SMTP, SMS through a Twilio-like API, and the
meeting attendance source of no-show checks. Each raises on failure; the caller records it."""

import contextlib
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from booking.i18n import translate
from booking.phone import is_e164
from booking.settings import Settings
from tasks.caps import provider_slot
from tasks.clients import bearer, http_client, raise_for_provider
from tasks.errors import PermanentError
from tasks.templates import render_template


class InvalidRecipient(PermanentError):
    """A reminder's recipient cannot receive it (e.g. a phone number not in E.164 form)."""


def reminder_text(
    *, locale: str, context: dict[str, Any], subject: str | None, body: str | None
) -> tuple[str, str]:
    """Subject and body: the workflow step's own templates (sandboxed), or the default."""
    if subject is None and body is None:
        return (
            translate(locale, "reminder_subject").format(**context),
            translate(locale, "reminder_body").format(**context),
        )
    return (
        render_template(subject or "{{ title }}", context, what="reminder subject template"),
        render_template(body or "", context, what="reminder body template"),
    )


class Mailer:
    """Sends emails over one SMTP connection, opened for the first and kept for the next
    (a cancellation tells the attendees and the host in one step); after a failure the next
    email opens a new one. Use it as a context manager: the connection is closed at the end.
    An open connection holds one slot of the `reminders` cap (tasks/caps.py)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._slot = contextlib.ExitStack()

    def send(self, *, to: str, subject: str, body: str, message_key: str) -> None:
        settings = self._settings
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        # Stable per message, so a resend after a lost acknowledgement can be recognised.
        message["Message-ID"] = make_msgid(idstring=message_key, domain="bookings.invalid")
        message.set_content(body)
        reused = self._smtp is not None
        try:
            self._send_once(message)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            if not reused:
                raise
            # The server closed the kept connection between two emails: once more, afresh.
            self._send_once(message)

    def _send_once(self, message: EmailMessage) -> None:
        """Send on the open connection (opened if none); on any failure it is closed."""
        try:
            if self._smtp is None:
                self._slot.enter_context(provider_slot("reminders"))
                self._smtp = self._connect()
            self._smtp.send_message(message)
        except Exception:
            self.close()
            raise

    def _connect(self) -> smtplib.SMTP:
        settings = self._settings
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30)
        try:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        except Exception:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        try:
            if smtp is not None:
                smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # the messages were accepted; a failed goodbye loses nothing
        finally:
            self._slot.close()

    def __enter__(self) -> "Mailer":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def send_email(settings: Settings, *, to: str, subject: str, body: str, message_key: str) -> None:
    """One email on a connection of its own."""
    with Mailer(settings) as mailer:
        mailer.send(to=to, subject=subject, body=body, message_key=message_key)


def send_sms(settings: Settings, *, to: str, body: str) -> None:
    if not is_e164(to):
        raise InvalidRecipient("phone number is not in E.164 form")
    if not (settings.sms_base_url and settings.sms_account_sid and settings.sms_auth_token):
        raise PermanentError("SMS is not configured")
    with provider_slot("reminders"):
        response = http_client().post(
            f"{settings.sms_base_url}/2010-04-01/Accounts/{settings.sms_account_sid}/Messages.json",
            data={"To": to, "From": settings.sms_from, "Body": body},
            auth=(settings.sms_account_sid, settings.sms_auth_token.get_secret_value()),
        )
    raise_for_provider(response, "SMS provider")


def attendees_who_joined(settings: Settings, room: str) -> set[str]:
    """Emails of everyone who joined the booking's meeting room (Daily-like sessions API)."""
    assert settings.attendance_base_url
    response = http_client().get(
        f"{settings.attendance_base_url}/v1/meetings",
        params={"room": room},
        headers=bearer(settings.attendance_api_key),
    )
    raise_for_provider(response, "attendance source")
    return {
        str(participant.get("user_id", "")).lower()
        for session in response.json().get("data", [])
        for participant in session.get("participants", [])
    }

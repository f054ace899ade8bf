"""One settings model for the whole project; nothing else reads the environment."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"

DispatchMode = Literal["bundled", "per-concern"]


# Outside services a burst must not flood, and how many calls to each may run at once across
# every worker (tasks/caps.py). Subscribers' webhooks share one cap.
PROVIDER_CAPS: dict[str, int] = {
    "webhooks": 16,
    "push": 8,
    "chat": 4,
    "customerio": 4,
    "analytics": 4,
    "reminders": 8,
}


class Settings(BaseSettings):
    """Configuration read from `BOOKING_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="BOOKING_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DATA_DIR / 'bookings.db'}",
        description="SQLAlchemy URL of the bookings database (SQLite file or postgresql+psycopg://).",
    )
    dispatch_mode: DispatchMode = Field(
        default="bundled",
        description="bundled: one post-commit run per booking; per-concern: one run per concern.",
    )
    prefect_api_url: str | None = Field(
        default=None,
        description="Prefect API the booking side creates runs on; unset: PREFECT_API_URL.",
    )
    dispatch_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="HTTP timeout of one call to the Prefect API when dispatching.",
    )
    relay_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Age an undispatched outbox event must reach before the relay retries it.",
    )
    relay_batch_size: int = Field(default=100, gt=0, description="Events one relay pass claims.")
    relay_lease_seconds: float = Field(
        default=120.0, gt=0, description="How long a relay's claim on an event holds."
    )
    run_stale_seconds: float = Field(
        default=900.0,
        gt=0,
        description="A post-commit run Running this long is restarted by the relay.",
    )
    run_max_restarts: int = Field(
        default=3, ge=0, description="Restarts of a booking's crashed runs before it is left."
    )
    # Prefect sends a heartbeat at most every 30 s (`python -m worker` sets 30): the window
    # must leave room for one late heartbeat.
    run_silence_seconds: int = Field(
        default=90,
        ge=45,
        description="A run Running with no heartbeat this long is marked Crashed.",
    )
    worker_run_limit: int = Field(
        default=16,
        ge=0,
        description="Most flow runs one worker runs at once (0: no limit); the rest wait.",
    )
    worker_stop_grace_seconds: float = Field(
        default=60.0,
        ge=0,
        description="On SIGTERM, how long a worker lets its runs finish before handing them back.",
    )

    provider_caps: dict[str, PositiveInt] = Field(
        default_factory=lambda: dict(PROVIDER_CAPS),
        description="Most calls to each outside service at once, across every worker (JSON).",
    )

    webhook_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Connect timeout of one webhook delivery attempt."
    )
    webhook_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Total time one webhook delivery attempt may take."
    )
    webhook_retries: int = Field(
        default=4, ge=0, description="Retries of a webhook delivery after a transient fault."
    )
    webhook_retry_base_seconds: float = Field(
        default=5.0, ge=0, description="First retry delay; doubles each retry, plus jitter."
    )
    webhook_retry_after_cap_seconds: float = Field(
        default=60.0, ge=0, description="Longest `Retry-After` a subscriber may ask for."
    )
    webhook_redelivery_delays_seconds: list[float] = Field(
        default_factory=lambda: [300, 1800, 7200, 18000, 36000, 36000],
        description="Delays of the redeliveries after a webhook's retries failed (~27 h in all).",
    )
    webhook_disable_after_hours: float = Field(
        default=120.0,
        gt=0,
        description="A subscription whose every delivery failed this long is deactivated.",
    )
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Internal networks (CIDR) webhooks may reach, e.g. 127.0.0.0/8 for tests.",
    )
    webhook_response_excerpt_bytes: int = Field(
        default=1024, ge=0, description="Bytes of a subscriber's answer kept in the log."
    )

    provider_retries: int = Field(
        default=4, ge=0, description="Retries of an integration step after a transient fault."
    )
    provider_retry_base_seconds: float = Field(
        default=5.0, ge=0, description="First retry delay of integration steps; doubles, +jitter."
    )
    push_base_url: str | None = Field(
        default=None, description="FCM HTTP v1 compatible API base URL; unset disables push."
    )
    push_project_id: str = Field(default="booking", description="Project id in the push URL.")
    push_token: SecretStr | None = Field(default=None, description="Bearer token of the push API.")
    chat_base_url: str | None = Field(
        default=None, description="Chat sync API base URL; unset disables chat sync."
    )
    chat_api_key: SecretStr | None = Field(default=None, description="Bearer key of the chat API.")
    customerio_track_url: str | None = Field(
        default=None, description="Customer.io Track API base URL; unset disables identify."
    )
    customerio_site_id: str | None = Field(default=None, description="Customer.io site id.")
    customerio_api_key: SecretStr | None = Field(default=None, description="Customer.io API key.")
    analytics_url: str | None = Field(
        default=None, description="Analytics events endpoint; unset disables analytics."
    )
    analytics_api_key: SecretStr | None = Field(default=None, description="Analytics API key.")

    smtp_host: str = Field(default="127.0.0.1", description="SMTP server for reminder emails.")
    smtp_port: int = Field(default=25, description="SMTP port.")
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the SMTP session with STARTTLS."
    )
    smtp_username: str | None = Field(default=None, description="SMTP user, if it needs login.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_from: str = Field(
        default="Bookings <no-reply@bookings.example>", description="From address of reminders."
    )
    sms_base_url: str | None = Field(
        default=None, description="Twilio-compatible SMS API base URL; unset disables SMS."
    )
    sms_account_sid: str | None = Field(default=None, description="SMS account id (basic user).")
    sms_auth_token: SecretStr | None = Field(default=None, description="SMS auth token.")
    sms_from: str = Field(default="+15550000000", description="Sender number of SMS reminders.")
    attendance_base_url: str | None = Field(
        default=None, description="Meeting attendance API (Daily-like) for no-show checks."
    )
    attendance_api_key: SecretStr | None = Field(
        default=None, description="Bearer key of the attendance API."
    )
    due_batch_size: int = Field(default=50, gt=0, description="Due items one sweep claims.")
    due_max_attempts: int = Field(
        default=5, gt=0, description="Sweeps that may try one due item before it stays failed."
    )
    due_sweep_seconds: int = Field(
        default=60,
        gt=0,
        le=3600,
        description="Due-work sweeps are planned on multiples of this many seconds: at most "
        "one a period, a due row sent within about this long of its due time, and work a sweep "
        "left (a failed row, a held message) looked at again after this long.",
    )
    due_lease_seconds: float = Field(
        default=300.0, gt=0, description="How long a sweep's claim on a due item holds."
    )
    prefect_retention_days: float = Field(
        default=30,
        gt=0,
        description="Final Prefect flow runs (with task runs, logs and "
        "artifacts) older than this are deleted by the retention flow.",
    )
    delivery_attempt_retention_days: float = Field(
        default=90,
        gt=0,
        description="Webhook delivery attempts older than this are "
        "deleted, except each message's last attempt (its final status).",
    )
    redelivery_retention_days: float = Field(
        default=90,
        gt=0,
        description="Finished webhook redeliveries older than this are "
        "deleted (the message can still be rebuilt from its outbox event).",
    )
    due_work_retention_days: float = Field(
        default=90,
        gt=0,
        description="Finished reminders and scheduled triggers due more "
        "than this long ago are deleted.",
    )
    retention_batch_size: int = Field(
        default=500, gt=0, description="Rows (or runs, at most 50) one retention batch deletes."
    )

    @field_validator("provider_caps")
    @classmethod
    def _every_provider_capped(cls, caps: dict[str, int]) -> dict[str, int]:
        """A partial setting keeps the other providers' caps; an unknown name is a typo."""
        if unknown := sorted(set(caps) - set(PROVIDER_CAPS)):
            raise ValueError(f"unknown providers {unknown}; known: {', '.join(PROVIDER_CAPS)}")
        return {**PROVIDER_CAPS, **caps}

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only SQLite and PostgreSQL URLs are supported")
        return value


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()

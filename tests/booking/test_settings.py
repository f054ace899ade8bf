"""Settings: the documented fallbacks hold."""

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import Engine

from booking.settings import Settings
from handoff.dispatch import DispatchConfigError, PostCommitDispatcher


def test_the_prefect_api_falls_back_to_prefects_own_setting(
    monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    """A worker configured with only PREFECT_API_URL (as the README says) dispatches there."""
    monkeypatch.delenv("BOOKING_PREFECT_API_URL", raising=False)
    settings = Settings()
    assert settings.prefect_api_url is None

    with temporary_settings({PREFECT_API_URL: "http://prefect.internal:4200/api"}):
        dispatcher = PostCommitDispatcher(engine=engine, settings=settings)
    assert dispatcher.api_url == "http://prefect.internal:4200/api"

    explicit = settings.model_copy(update={"prefect_api_url": "http://other:4200/api"})
    with temporary_settings({PREFECT_API_URL: "http://prefect.internal:4200/api"}):
        assert PostCommitDispatcher(engine=engine, settings=explicit).api_url == (
            "http://other:4200/api"
        )


def test_no_prefect_api_at_all_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    monkeypatch.delenv("BOOKING_PREFECT_API_URL", raising=False)
    with (
        temporary_settings({PREFECT_API_URL: None}),
        pytest.raises(DispatchConfigError, match="BOOKING_PREFECT_API_URL"),
    ):
        PostCommitDispatcher(engine=engine, settings=Settings())


def test_provider_caps_keep_the_defaults_they_do_not_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from booking.settings import PROVIDER_CAPS

    monkeypatch.setenv("BOOKING_PROVIDER_CAPS", '{"webhooks": 40}')
    assert Settings().provider_caps == {**PROVIDER_CAPS, "webhooks": 40}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ('{"webhook": 40}', "unknown providers \\['webhook'\\]; known: webhooks, push"),
        ('{"push": 0}', "provider_caps.push\n  Input should be greater than 0"),
    ],
)
def test_a_bad_provider_cap_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, value: str, error: str
) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("BOOKING_PROVIDER_CAPS", value)
    with pytest.raises(ValidationError, match=error):
        Settings()

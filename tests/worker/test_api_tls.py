"""The worker's certificate file for a plain-HTTP Prefect API: written only when it is safe."""

import ssl
from pathlib import Path

import pytest
from prefect.settings import (
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
    PREFECT_API_URL,
    temporary_settings,
)

from worker.api_tls import plain_http_cert_file


def test_a_plain_http_api_gets_a_file_of_one_certificate_that_loads(tmp_path: Path) -> None:
    # Whatever bundle the setting held (it falls back to SSL_CERT_FILE): over plain HTTP it
    # is never used.
    settings = {PREFECT_API_URL: "http://127.0.0.1:4200/api", PREFECT_API_SSL_CERT_FILE: "/x.pem"}
    with temporary_settings(settings):
        path = plain_http_cert_file(tmp_path)
    assert path is not None
    assert path.read_text().count("BEGIN CERTIFICATE") == 1
    context = ssl.create_default_context(cafile=str(path))
    assert len(context.get_ca_certs()) == 1
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left


@pytest.mark.parametrize(
    "settings",
    [
        {PREFECT_API_URL: "https://prefect.example.com/api"},
        {PREFECT_API_URL: "http://127.0.0.1:4200/api", PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True},
        {PREFECT_API_URL: None},
    ],
    ids=["https API", "verification off", "no API URL"],
)
def test_an_https_api_or_checks_turned_off_are_left_alone(tmp_path: Path, settings: dict) -> None:
    with temporary_settings(settings):
        assert plain_http_cert_file(tmp_path) is None
    assert list(tmp_path.iterdir()) == []

"""A TLS context that costs a millisecond, not forty, for Prefect's clients over plain HTTP.

Prefect builds a certificate-checking TLS context for every API client it makes, loading the
certificate bundle named by `PREFECT_API_SSL_CERT_FILE` (certifi's 140-odd roots by
default), whether the API URL is https or not. That load takes about 40 ms of CPU, and a
flow run makes about a dozen clients: the engine's, its log, event and concurrency
services', the server version check. Over plain HTTP the context is never used, so the
worker points the setting at a file of one certificate, which loads in about a millisecond.
The setting otherwise falls back to `SSL_CERT_FILE`, the machine's whole bundle, which over
plain HTTP is not used either. An https API, or `PREFECT_API_TLS_INSECURE_SKIP_VERIFY`, is
left as it is; were a plain-HTTP API ever to send a client to https, its certificate would
be checked against that one root and refused.
"""

import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import certifi
from prefect.settings import get_current_settings

PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\n.+?\n-----END CERTIFICATE-----\n", re.DOTALL
)


def plain_http_cert_file(directory: Path | None = None) -> Path | None:
    """A one-certificate file for `PREFECT_API_SSL_CERT_FILE`, written when the API is
    plain HTTP and certificate checks were not turned off; else None."""
    api = get_current_settings().api
    if not api.url or urlsplit(api.url).scheme != "http" or api.tls_insecure_skip_verify:
        return None
    first = PEM_CERTIFICATE.search(Path(certifi.where()).read_text(encoding="ascii"))
    assert first is not None, "certifi's bundle holds no certificate"
    # One per user (another user's file in a shared temp directory could not be replaced).
    name = f"booking-prefect-api-plain-http-{os.getuid()}.pem"
    path = (directory or Path(tempfile.gettempdir())) / name
    # Written whole, then moved into place: a worker starting beside another never reads half.
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(first.group(0))
    Path(partial).replace(path)
    return path

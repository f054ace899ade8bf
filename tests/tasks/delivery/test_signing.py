"""Signatures checked with independent code: hashlib/hmac directly and `standardwebhooks`."""

import hashlib
import hmac

from standardwebhooks import Webhook

from tasks.delivery.signing import NO_SECRET, cal_signature, signed_headers

BODY = b'{"triggerEvent":"BOOKING_CREATED","payload":{"title":"Caf\xc3\xa9"}}'


def test_cal_signature_is_hex_hmac_sha256_of_the_exact_body() -> None:
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()

    assert cal_signature(BODY, "s3cret") == expected


def test_without_a_secret_the_signature_says_so() -> None:
    assert cal_signature(BODY, None) == NO_SECRET
    assert "webhook-signature" not in signed_headers(
        message_id="msg_1", timestamp=1, body=BODY, secret=None, content_type="application/json"
    )


def test_standard_webhooks_library_verifies_the_headers() -> None:
    import time

    headers = signed_headers(
        message_id="msg_abc",
        timestamp=int(time.time()),
        body=BODY,
        secret="s3cret",
        content_type="application/json",
    )

    verified = Webhook(b"s3cret").verify(BODY, headers)

    assert verified["payload"]["title"] == "Café"


def test_a_whsec_secret_verifies_as_receivers_usually_call_the_library() -> None:
    import time

    from tasks.delivery.signing import new_secret

    secret = new_secret()
    headers = signed_headers(
        message_id="msg_w",
        timestamp=int(time.time()),
        body=BODY,
        secret=secret,
        content_type="application/json",
    )

    assert secret.startswith("whsec_")
    assert Webhook(secret).verify(BODY, headers)["triggerEvent"] == "BOOKING_CREATED"
    # X-Cal-Signature-256 keeps Cal.com's form: the secret string's bytes.
    assert headers["X-Cal-Signature-256"] == (
        hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    )


def test_a_broken_whsec_secret_is_one_clear_permanent_error() -> None:
    import pytest

    from tasks.delivery.signing import InvalidSecret

    with pytest.raises(InvalidSecret, match="not valid base64"):
        signed_headers(message_id="m", timestamp=1, body=BODY, secret="whsec_***", content_type="x")

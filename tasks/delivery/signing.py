"""Webhook signatures, pure: `X-Cal-Signature-256` and the Standard Webhooks headers.

A subscription's secret is, as the Standard Webhooks spec has it, `whsec_` and base64 (new
subscriptions get one, `new_secret`): the `webhook-signature` key is the decoded bytes, so a
receiver calls `standardwebhooks.Webhook("whsec_...").verify(body, headers)`. A plain secret
(any other string) signs with its own UTF-8 bytes: `Webhook(secret.encode())`.
`X-Cal-Signature-256` signs with the secret string's bytes either way, as Cal.com does.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from tasks.errors import PermanentError

NO_SECRET = "no-secret-provided"
WHSEC_PREFIX = "whsec_"


class InvalidSecret(PermanentError):
    """A `whsec_` secret whose rest is not base64: nothing could verify its signatures."""


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64."""
    return WHSEC_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signing_key(secret: str) -> bytes:
    """The `webhook-signature` key: a `whsec_` secret's decoded bytes, else the secret's own."""
    if not secret.startswith(WHSEC_PREFIX):
        return secret.encode()
    try:
        return base64.b64decode(secret.removeprefix(WHSEC_PREFIX), validate=True)
    except binascii.Error:
        raise InvalidSecret("the subscription's whsec_ secret is not valid base64") from None


def cal_signature(body: bytes, secret: str | None) -> str:
    """Hex HMAC-SHA256 of the exact body bytes, or `no-secret-provided` without a secret."""
    if not secret:
        return NO_SECRET
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(message_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` as the Standard Webhooks spec signs."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def signed_headers(
    *,
    message_id: str,
    timestamp: int,
    body: bytes,
    secret: str | None,
    content_type: str,
    previous: Sequence[str] = (),
) -> dict[str, str]:
    """The headers of one message. `webhook-signature` lists a `v1,` signature for `secret`
    and then for each `previous` secret still valid after a rotation, newest first, space
    separated as the spec has it, so a receiver holding any of them verifies;
    `X-Cal-Signature-256` uses `secret`, the newest, as Cal.com has no list."""
    headers = {
        "Content-Type": content_type,
        "X-Cal-Signature-256": cal_signature(body, secret),
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret:
        headers["webhook-signature"] = " ".join(
            standard_signature(message_id, timestamp, body, key) for key in (secret, *previous)
        )
    return headers

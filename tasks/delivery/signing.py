"""Webhook signatures, pure: `X-Cal-Signature-256` and the Standard Webhooks headers.

Subscribers verify Standard Webhooks signatures with the raw secret bytes as the key, e.g.
`standardwebhooks.Webhook(secret.encode()).verify(body, headers)`.
"""

import base64
import hashlib
import hmac

NO_SECRET = "no-secret-provided"


def cal_signature(body: bytes, secret: str | None) -> str:
    """Hex HMAC-SHA256 of the exact body bytes, or `no-secret-provided` without a secret."""
    if not secret:
        return NO_SECRET
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(message_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` as the Standard Webhooks spec signs."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def signed_headers(
    *, message_id: str, timestamp: int, body: bytes, secret: str | None, content_type: str
) -> dict[str, str]:
    headers = {
        "Content-Type": content_type,
        "X-Cal-Signature-256": cal_signature(body, secret),
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret:
        headers["webhook-signature"] = standard_signature(message_id, timestamp, body, secret)
    return headers

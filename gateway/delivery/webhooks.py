"""Signing a request the Standard Webhooks way (pure: bytes and values in, header values out).

The scheme (standardwebhooks.com): three headers, ``webhook-id`` (a stable message id: ours is the
delivery's idempotency key, the same on every retry), ``webhook-timestamp`` (Unix seconds of this
attempt) and ``webhook-signature`` = ``v1,`` + base64 of HMAC-SHA256 over ``{id}.{timestamp}.{body}``.
The shared secret is base64, conventionally written with a ``whsec_`` prefix; the prefix is stripped
and the rest decoded, as the reference libraries do, so both ends derive the same key bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["SECRET_PREFIX", "signature", "webhook_headers", "webhook_key"]

SECRET_PREFIX = "whsec_"


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` + base64, or the base64 alone).

    Raises ValueError (never naming the secret) when it is not base64 or decodes to nothing.
    """
    text = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            "the hmac secret is not base64: a Standard Webhooks secret is 'whsec_' followed by the base64 "
            "of 24 to 64 random bytes (see docs/destinations-rest.md to make one)"
        ) from exc
    if not key:
        raise ValueError("the hmac secret decodes to no bytes")
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, msg_id, timestamp, body),
    }

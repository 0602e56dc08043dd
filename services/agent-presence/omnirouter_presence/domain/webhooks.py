"""Standard Webhooks signing (webhook-id / webhook-timestamp / webhook-signature "v1,<base64>") and the
retry schedule of the outbound webhooks. See https://www.standardwebhooks.com/."""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"


class InvalidSecret(ValueError):
    pass


def secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise InvalidSecret("a webhook secret is whsec_ followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def retry_delay_s(attempts: int, base_s: float, max_s: float, jitter: float) -> float:
    """Delay before the next attempt after ``attempts`` failures: exponential, capped, with the given
    jitter fraction in [0, 1) so that many receivers failing together do not retry in lock-step."""
    delay: float = min(max_s, base_s * (2 ** max(0, attempts - 1)))
    return delay * (1.0 + 0.25 * jitter)


def is_permanent_failure(status: int) -> bool:
    """4xx answers other than 408/409/425/429 mean the receiver will never accept this message."""
    return 400 <= status < 500 and status not in {408, 409, 425, 429}

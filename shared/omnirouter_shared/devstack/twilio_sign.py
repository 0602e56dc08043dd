"""Twilio's request signature, for the example webhook `make run` prints (the tests use the `twilio`
package's own RequestValidator, which this matches)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shlex
from collections.abc import Mapping


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def example_sms(message_sid: str, sender: str, to: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": message_sid,
        "SmsSid": message_sid,
        "AccountSid": "ACdev00000000000000000000000000000",
        "From": sender,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }


def curl_command(url: str, auth_token: str, params: Mapping[str, str]) -> str:
    sig = twilio_signature(auth_token, url, params)
    parts = ["curl", "-sS", "-X", "POST", url, "-H", f"X-Twilio-Signature: {sig}"]
    for k, v in params.items():
        parts += ["--data-urlencode", f"{k}={v}"]
    return " ".join(shlex.quote(p) for p in parts)

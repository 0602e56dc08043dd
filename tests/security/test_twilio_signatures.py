"""The gateway's Twilio endpoints cannot be fooled: the signature is checked over OMNI_PUBLIC_URL (never
the Host or X-Forwarded-* headers a caller sends), with HMAC-SHA1 and the real auth token only, over the
exact parameters. Twilio signs no timestamp: a replay is answered like the original and deduplicated by
MessageSid (exactly-once is asserted by `make chaos`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from tests.e2e.suite import Suite

pytestmark = pytest.mark.integration

PATHS = ("/webhooks/twilio/messaging", "/webhooks/twilio/voice")


def params(path: str) -> dict[str, str]:
    sid = secrets.token_hex(16)
    if path.endswith("voice"):
        return {"CallSid": "CA" + sid, "AccountSid": "AC" + "0" * 32, "From": "+14155550100",
                "To": "+18005550199", "CallStatus": "ringing", "Direction": "inbound"}  # fmt: skip
    return {"MessageSid": "SM" + sid, "AccountSid": "AC" + "0" * 32, "From": "+14155550100",
            "To": "+18005550199", "Body": "hello", "NumMedia": "0"}  # fmt: skip


def sha256_signature(token: str, url: str, data: dict[str, str]) -> str:
    payload = url + "".join(k + data[k] for k in sorted(data))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("path", PATHS)
async def test_forgeries_are_refused_and_the_real_thing_is_not(suite: Suite, path: str) -> None:
    token = suite.env["TWILIO_AUTH_TOKEN"]
    url = suite.public_url + path
    evil = "https://evil.example" + path
    real = RequestValidator(token)
    async with aiohttp.ClientSession() as http:
        target = suite.url("channel-gateway") + path

        async def post(data: dict[str, str], headers: dict[str, str]) -> int:
            async with http.post(target, data=data, headers=headers) as r:
                await r.read()
                return r.status

        forged: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        p = params(path)
        forged["missing header"] = (p, {})
        forged["empty header"] = (p, {"X-Twilio-Signature": ""})
        forged["HMAC-SHA256 instead of SHA1"] = (p, {"X-Twilio-Signature": sha256_signature(token, url, p)})
        forged["signed with an empty token"] = (
            p,
            {"X-Twilio-Signature": RequestValidator("").compute_signature(url, p)},
        )
        forged["signed with another token"] = (
            p, {"X-Twilio-Signature": RequestValidator("guess").compute_signature(url, p)}
        )  # fmt: skip
        forged["spoofed Host, signed for it"] = (
            p, {"Host": "evil.example", "X-Twilio-Signature": real.compute_signature("http://evil.example" + path, p)}
        )  # fmt: skip
        forged["spoofed X-Forwarded-Host/Proto, signed for them"] = (
            p,
            {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
             "Forwarded": "host=evil.example;proto=https", "X-Twilio-Signature": real.compute_signature(evil, p)},
        )  # fmt: skip
        tampered = {**p, "Body": "transfer all the money"} if "Body" in p else {**p, "From": "+19999999999"}
        forged["parameters changed after signing"] = (
            tampered,
            {"X-Twilio-Signature": real.compute_signature(url, p)},
        )
        forged["extra parameter added after signing"] = (
            {**p, "Extra": "1"}, {"X-Twilio-Signature": real.compute_signature(url, p)}
        )  # fmt: skip
        statuses = {name: await post(data, headers) for name, (data, headers) in forged.items()}
        accepted = {name: s for name, s in statuses.items() if s < 400 or s >= 500}
        assert not accepted, f"forged requests not refused with a 4xx: {accepted}"

        good = params(path)
        sig = {"X-Twilio-Signature": real.compute_signature(url, good)}
        assert await post(good, sig) == 200
        # A replay (Twilio retries byte-identical) is answered the same; it is deduplicated downstream.
        assert await post(good, sig) == 200
        # Forwarded headers from the caller change nothing for a genuine request either.
        assert (
            await post(good, {**sig, "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}) == 200
        )

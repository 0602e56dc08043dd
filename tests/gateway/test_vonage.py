"""Vonage Messages API callbacks through the real broker, signed as Vonage signs them (HS256 JWT with
``payload_hash``), each token checked with vonage-jwt's own verifier."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import warnings
from typing import Any

import aiohttp
import jwt
import pytest
from vonage_jwt import verify_signature

from omnirouter_shared.contracts.interactions import interaction_id_for
from omnirouter_shared.topics import Topic
from tests.gateway.harness import Gateway

pytestmark = pytest.mark.integration

PATH = "/webhooks/vonage"


def _secret(gw: Gateway) -> str:
    return gw.settings.vonage_signature_secret.get_secret_value()  # type: ignore[union-attr]


def _jwt(secret: str, body: bytes, *, iat: float | None = None, payload_hash: str | None = None) -> str:
    claims = {
        "iat": int(iat if iat is not None else time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": payload_hash if payload_hash is not None else hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    with warnings.catch_warnings():
        # The dev signature secret is shorter than RFC 7518 recommends; Vonage's own may be too.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        token = jwt.encode(claims, secret, algorithm="HS256")
        if iat is None:
            # A chosen iat is a stale or future token under test (vonage-jwt refuses future ones itself).
            assert verify_signature(token, secret)
    return token


async def _post(
    http: aiohttp.ClientSession,
    gw: Gateway,
    payload: dict[str, Any] | bytes,
    *,
    authorization: str | None = None,
    content_type: str = "application/json",
    **claims: Any,
) -> aiohttp.ClientResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": content_type}
    if authorization is None:
        headers["Authorization"] = "Bearer " + _jwt(claims.pop("secret", _secret(gw)), body, **claims)
    elif authorization:
        headers["Authorization"] = authorization
    resp = await http.post(gw.url + PATH, data=body, headers=headers)
    await resp.read()
    return resp


def _sms(message_uuid: str, text: str = "Hello From Vonage!") -> dict[str, Any]:
    return {
        "channel": "sms",
        "message_uuid": message_uuid,
        "to": "447700900000",
        "from": "447700900001",
        "timestamp": "2025-06-08T14:00:00Z",
        "text": text,
        "sms": {"num_messages": "1", "keyword": "HELLO"},
        "usage": {"currency": "EUR", "price": "0.0333"},
        "message_type": "text",
    }


async def test_an_sms_is_published_once_with_its_fields(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    message_uuid = str(uuid.uuid4())
    async with aiohttp.ClientSession() as http:
        first = await _post(http, gateway, _sms(message_uuid))
        assert first.status == 200, await first.text()
        # Vonage retries with a fresh JWT each time: still one event.
        for _ in range(3):
            assert (await _post(http, gateway, _sms(message_uuid))).status == 200
    events = await inbound.settle(1.5)
    assert len(events) == 1, events
    env = events[0]
    p = env["payload"]
    assert env["type"] == "interaction.received"
    assert env["event_id"] == interaction_id_for("vonage", message_uuid)
    assert p["channel"] == "sms" and p["vendor"] == "vonage"
    assert p["vendor_message_id"] == message_uuid
    assert p["sender"] == {**p["sender"], "kind": "phone", "value": "+447700900001"}
    assert p["recipient"]["value"] == "+447700900000"
    assert p["text"] == "Hello From Vonage!"
    assert p["sent_at"].startswith("2025-06-08T14:00:00")
    assert p["vendor_fields"]["sms"]["keyword"] == "HELLO"
    assert inbound.keys[0] == b"phone:+447700900001"


async def test_whatsapp_media_messenger_and_receipts(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    wa, fb, sent, failed = (str(uuid.uuid4()) for _ in range(4))
    whatsapp = {
        "channel": "whatsapp",
        "message_uuid": wa,
        "to": "447700900000",
        "from": "447700900002",
        "timestamp": "2025-06-08T14:01:00Z",
        "profile": {"name": "Jane Smith"},
        "message_type": "image",
        "image": {"url": "https://api-eu.nexmo.com/v3/media/1234", "caption": "the damage"},
    }
    messenger = {
        "channel": "messenger",
        "message_uuid": fb,
        "to": "107355888000000",
        "from": "6021710000000000",
        "timestamp": "2025-06-08T14:02:00Z",
        "message_type": "text",
        "text": "hi from messenger",
    }
    delivered = {
        "message_uuid": sent,
        "to": "447700900003",
        "from": "447700900000",
        "timestamp": "2025-06-08T14:03:00Z",
        "status": "delivered",
        "channel": "sms",
        "client_ref": "reply-1",
        "usage": {"currency": "EUR", "price": "0.0333"},
    }
    rejected = {
        "message_uuid": failed,
        "to": "447700900004",
        "from": "447700900000",
        "timestamp": "2025-06-08T14:04:00Z",
        "status": "rejected",
        "channel": "whatsapp",
        "error": {
            "type": "https://developer.nexmo.com/api-errors/messages-olympus#1000",
            "title": 1000,
            "detail": "Throttled - You have exceeded the submission capacity allowed on this account.",
            "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
        },
    }
    async with aiohttp.ClientSession() as http:
        for payload in (whatsapp, messenger, delivered, rejected, delivered):
            r = await _post(http, gateway, payload)
            assert r.status == 200, await r.text()
        unknown = await _post(http, gateway, {**delivered, "status": "mystery"})
        assert unknown.status == 200
        assert (await unknown.json())["ignored"] == 1
    events = await inbound.settle(2.0)
    assert len(events) == 4, events
    by_id = {e["payload"]["vendor_message_id"]: e for e in events}
    w = by_id[wa]["payload"]
    assert w["channel"] == "whatsapp"
    assert w["sender"] == {
        **w["sender"],
        "kind": "whatsapp",
        "value": "447700900002",
        "display_name": "Jane Smith",
    }
    assert w["text"] == "the damage"
    assert w["attachments"][0]["url"] == "https://api-eu.nexmo.com/v3/media/1234"
    f = by_id[fb]["payload"]
    assert f["sender"] == {**f["sender"], "kind": "messenger", "value": "6021710000000000"}
    assert f["sender"]["namespace"] == "107355888000000"
    d = by_id[sent]
    assert d["type"] == "interaction.status_changed"
    assert d["payload"]["direction"] == "outbound" and d["payload"]["status"] == "delivered"
    assert d["payload"]["customer_address"]["value"] == "+447700900003"
    assert d["payload"]["interaction_id"] == interaction_id_for("vonage", sent)
    x = by_id[failed]["payload"]
    assert x["status"] == "failed" and x["channel"] == "whatsapp"
    assert x["error"].startswith("1000 Throttled")


async def test_forged_stale_and_unsigned_callbacks_are_refused(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    payload = _sms(str(uuid.uuid4()), "forged")
    body = json.dumps(payload).encode()
    tolerance = gateway.settings.signature_tolerance_s
    async with aiohttp.ClientSession() as http:
        wrong = await _post(http, gateway, payload, secret="not-the-signature-secret")
        assert wrong.status == 403
        reason = await wrong.json()
        assert reason["error"] == "bad_signature" and _secret(gateway) not in reason["reason"]
        stale = await _post(http, gateway, payload, iat=time.time() - tolerance - 60)
        assert stale.status == 403
        assert (await stale.json())["error"] == "stale_timestamp"
        future = await _post(http, gateway, payload, iat=time.time() + tolerance + 60)
        assert future.status == 403
        other_body = await _post(http, gateway, payload, payload_hash=hashlib.sha256(b"{}").hexdigest())
        assert other_body.status == 403
        assert "payload_hash" in (await other_body.json())["reason"]
        # Signed over the original bytes, sent with one changed.
        token = _jwt(_secret(gateway), body)
        tampered = await _post(
            http, gateway, body.replace(b"forged", b"Forged"), authorization=f"Bearer {token}"
        )
        assert tampered.status == 403
        none_alg = jwt.encode({"iat": int(time.time()), "payload_hash": "x"}, "", algorithm="none")
        assert (await _post(http, gateway, payload, authorization=f"Bearer {none_alg}")).status == 403
        missing = await _post(http, gateway, payload, authorization="")
        assert missing.status == 401
        assert (await missing.json())["error"] == "missing_signature"
        basic = await _post(http, gateway, payload, authorization="Basic YWJjOmRlZg==")
        assert basic.status == 401
    assert await inbound.settle(1.0) == []


async def test_malformed_json_and_wrong_content_type(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        broken = await _post(http, gateway, b'{"message_uuid": ')
        assert broken.status == 400
        assert (await broken.json())["error"] == "malformed"
        no_uuid = await _post(http, gateway, {"channel": "sms", "from": "1", "to": "2", "text": "x"})
        assert no_uuid.status == 400
        form = await _post(http, gateway, b"text=hi", content_type="application/x-www-form-urlencoded")
        assert form.status == 415

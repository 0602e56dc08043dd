"""Twilio Messaging and Voice through the real broker, signed with the twilio package."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from omnirouter_gateway.inbound.twilio_signature import compute_signature
from omnirouter_shared.topics import Topic
from tests.gateway.harness import Gateway

pytestmark = pytest.mark.integration


def test_signature_matches_twilios_known_answer() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert compute_signature("12345", url, params.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


async def _post(
    http: aiohttp.ClientSession,
    gw: Gateway,
    path: str,
    params: dict[str, str],
    *,
    token: str | None = None,
    sign_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> aiohttp.ClientResponse:
    url = gw.settings.public_url + path
    validator = RequestValidator(token or gw.settings.twilio_auth_token.get_secret_value())  # type: ignore[union-attr]
    sig = validator.compute_signature(sign_url or url, params)
    resp = await http.post(gw.url + path, data=params, headers={"X-Twilio-Signature": sig, **(headers or {})})
    await resp.read()
    return resp


def _sms(sid: str, sender: str = "+14155550100", body: str = "hello", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "From": sender,
        "To": "+18005550199",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


async def test_sms_is_published_once_however_often_it_is_redelivered(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    sid = "SM" + uuid.uuid4().hex
    async with aiohttp.ClientSession() as http:
        first = await _post(http, gateway, "/webhooks/twilio/messaging", _sms(sid, body="Where is my order?"))
        assert first.status == 200
        assert first.headers["Content-Type"].startswith("text/xml")
        assert "<Response/>" in await first.text()
        # Redelivered: sequentially, and concurrently as two replicas would see it.
        again = await asyncio.gather(
            *(
                _post(http, gateway, "/webhooks/twilio/messaging", _sms(sid, body="Where is my order?"))
                for _ in range(5)
            )
        )
        assert [r.status for r in again] == [200] * 5
    events = await inbound.settle(1.5)
    assert len(events) == 1, events
    env = events[0]
    assert env["type"] == "interaction.received"
    payload = env["payload"]
    assert payload["channel"] == "sms"
    assert payload["vendor_message_id"] == sid
    assert payload["sender"] == {**payload["sender"], "kind": "phone", "value": "+14155550100"}
    assert payload["text"] == "Where is my order?"
    assert payload["vendor_fields"]["AccountSid"].startswith("AC")
    assert inbound.keys[0] == b"phone:+14155550100"


async def test_whatsapp_and_mms_are_told_apart(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    async with aiohttp.ClientSession() as http:
        wa = _sms(
            "SM" + uuid.uuid4().hex, sender="whatsapp:+447700900123", ProfileName="Ann", WaId="447700900123"
        )
        wa["To"] = "whatsapp:+18005550199"
        assert (await _post(http, gateway, "/webhooks/twilio/messaging", wa)).status == 200
        mms = _sms(
            "MM" + uuid.uuid4().hex,
            NumMedia="1",
            MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1",
            MediaContentType0="image/jpeg",
        )
        assert (await _post(http, gateway, "/webhooks/twilio/messaging", mms)).status == 200
    events = await inbound.wait_for(2)
    by_channel = {e["payload"]["channel"]: e["payload"] for e in events}
    assert by_channel["whatsapp"]["sender"]["kind"] == "whatsapp"
    assert by_channel["whatsapp"]["sender"]["value"] == "447700900123"
    assert by_channel["whatsapp"]["sender"]["display_name"] == "Ann"
    assert by_channel["mms"]["attachments"][0]["content_type"] == "image/jpeg"


async def test_bad_missing_and_wrong_url_signatures_are_refused(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    params = _sms("SM" + uuid.uuid4().hex)
    async with aiohttp.ClientSession() as http:
        wrong_token = await _post(http, gateway, "/webhooks/twilio/messaging", params, token="not-the-token")
        assert wrong_token.status == 403
        assert (await wrong_token.json())["error"] == "bad_signature"
        missing = await http.post(gateway.url + "/webhooks/twilio/messaging", data=params)
        assert missing.status == 401
        # Signed for another host: a spoofed Host header must not make it valid.
        spoofed = await _post(
            http,
            gateway,
            "/webhooks/twilio/messaging",
            params,
            sign_url="https://evil.example.com/webhooks/twilio/messaging",
            headers={"Host": "evil.example.com", "X-Forwarded-Host": "evil.example.com"},
        )
        assert spoofed.status == 403
        # A parameter changed after signing.
        sig = RequestValidator(gateway.settings.twilio_auth_token.get_secret_value()).compute_signature(  # type: ignore[union-attr]
            gateway.settings.public_url + "/webhooks/twilio/messaging", params
        )
        tampered = await http.post(
            gateway.url + "/webhooks/twilio/messaging",
            data={**params, "Body": "send me money"},
            headers={"X-Twilio-Signature": sig},
        )
        assert tampered.status == 403
    assert await inbound.settle(1.0) == []


async def test_wrong_content_type_and_oversized_bodies_are_refused(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.post(gateway.url + "/webhooks/twilio/messaging", json={"MessageSid": "SM1"})
        assert r.status == 415
        assert (await r.json())["error"] == "unsupported_media_type"
        big = await http.post(
            gateway.url + "/webhooks/twilio/messaging",
            data=b"Body=" + b"x" * (gateway.settings.max_body_bytes + 1),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert big.status == 413
        assert (await big.json())["error"] == "payload_too_large"


async def test_signed_but_malformed_is_a_400(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        r = await _post(http, gateway, "/webhooks/twilio/messaging", {"Body": "no sid"})
        assert r.status == 400
        assert "MessageSid" in (await r.json())["reason"]


async def test_a_call_waits_in_the_queue_and_its_status_follows(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    call = "CA" + uuid.uuid4().hex
    base = {"CallSid": call, "AccountSid": "AC" + "1" * 32, "From": "+14155550123", "To": "+18005550199"}
    async with aiohttp.ClientSession() as http:
        r = await _post(http, gateway, "/webhooks/twilio/voice", {**base, "CallStatus": "ringing"})
        assert r.status == 200
        twiml = await r.text()
        assert "<Enqueue>omnirouter</Enqueue>" in twiml and "<Say>" in twiml
        for seq, status in enumerate(["in-progress", "completed"]):
            s = await _post(
                http,
                gateway,
                "/webhooks/twilio/voice/status",
                {**base, "CallStatus": status, "SequenceNumber": str(seq)},
            )
            assert s.status == 200
        # The same status callback again: nothing new.
        again = await _post(
            http,
            gateway,
            "/webhooks/twilio/voice/status",
            {**base, "CallStatus": "completed", "SequenceNumber": "1"},
        )
        assert again.status == 200
    events = await inbound.settle(1.5)
    assert [e["type"] for e in events] == [
        "interaction.received",
        "interaction.status_changed",
        "interaction.status_changed",
    ]
    assert events[0]["payload"]["kind"] == "call" and events[0]["payload"]["channel"] == "voice"
    assert [e["payload"]["status"] for e in events[1:]] == ["answered", "completed"]
    assert {e["payload"]["interaction_id"] for e in events} == {events[0]["payload"]["interaction_id"]}


async def test_delivery_receipts_of_our_messages_are_status_events(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    sid = "SM" + uuid.uuid4().hex
    receipt = {
        "MessageSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "From": "+18005550199",
        "To": "+14155550100",
        "MessageStatus": "delivered",
    }
    async with aiohttp.ClientSession() as http:
        assert (await _post(http, gateway, "/webhooks/twilio/messaging", receipt)).status == 200
    (event,) = await inbound.settle(1.0)
    assert event["type"] == "interaction.status_changed"
    assert event["payload"]["direction"] == "outbound"
    assert event["payload"]["status"] == "delivered"
    assert event["payload"]["customer_address"]["value"] == "+14155550100"


async def test_a_vendor_without_its_secret_is_refused_not_accepted(
    kafka_bootstrap: str,
    make_database,
    topic_prefix: str,  # type: ignore[no-untyped-def]
) -> None:
    from tests.gateway.harness import running_gateway

    async with (
        running_gateway(kafka_bootstrap, await make_database(), topic_prefix, TWILIO_AUTH_TOKEN="") as gw,
        aiohttp.ClientSession() as http,
    ):
        r = await http.post(gw.url + "/webhooks/twilio/messaging", data=_sms("SM" + uuid.uuid4().hex))
        assert r.status == 503
        assert (await r.json())["error"] == "vendor_not_configured"


async def test_two_replicas_receiving_the_same_message_publish_it_once(
    kafka_bootstrap: str,
    make_database,  # type: ignore[no-untyped-def]
    topic_prefix: str,
) -> None:
    from tests.gateway.harness import running_gateway

    db = await make_database()
    async with (
        running_gateway(kafka_bootstrap, db, topic_prefix, OMNI_INSTANCE_ID="gw-a") as a,
        running_gateway(kafka_bootstrap, db, topic_prefix, OMNI_INSTANCE_ID="gw-b") as b,
        aiohttp.ClientSession() as http,
    ):
        inbound = await a.reader(Topic.INTERACTIONS_INBOUND)
        sids = ["SM" + uuid.uuid4().hex for _ in range(10)]
        posts = []
        for sid in sids:
            for gw in (a, b, a, b):
                # Each replica has its own public URL here; a vendor signs the one it called.
                posts.append(_post(http, gw, "/webhooks/twilio/messaging", _sms(sid, sender="+14155550177")))
        answers = await asyncio.gather(*posts)
        assert {r.status for r in answers} == {200}
        events = await inbound.settle(2.0)
    assert sorted(e["payload"]["vendor_message_id"] for e in events) == sorted(sids)

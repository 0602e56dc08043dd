"""Meta (WhatsApp Cloud API, Messenger, Instagram) through the real broker; payloads shaped as Meta
documents them, signatures cross-checked with pywa's own validator."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import aiohttp
import pytest
from pywa.utils import webhook_updates_validator

from omnirouter_gateway.inbound.meta import HEADER
from omnirouter_shared.contracts.interactions import interaction_id_for
from omnirouter_shared.topics import Topic
from tests.conftest import MakeDatabase
from tests.gateway.harness import Gateway, running_gateway

pytestmark = pytest.mark.integration

PATH = "/webhooks/meta"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY = "15550783881"


def _secret(gw: Gateway) -> str:
    return gw.settings.meta_app_secret.get_secret_value()  # type: ignore[union-attr]


def _sign(secret: str, body: bytes) -> str:
    header = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # The same check the pywa server runs on every update it receives.
    assert webhook_updates_validator(secret, body, header)
    return header


async def _post(
    http: aiohttp.ClientSession,
    gw: Gateway,
    payload: dict[str, Any] | bytes,
    *,
    secret: str | None = None,
    signature: str | None = None,
    content_type: str = "application/json",
) -> aiohttp.ClientResponse:
    # Meta sends the JSON with non-ASCII escaped; the signature is over exactly these bytes.
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": content_type}
    if signature is None:
        headers[HEADER] = _sign(secret or _secret(gw), body)
    elif signature:
        headers[HEADER] = signature
    resp = await http.post(gw.url + PATH, data=body, headers=headers)
    await resp.read()
    return resp


def _wa_value(messages: list[dict[str, Any]], statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages:
        value["contacts"] = [
            {"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"},
            {"profile": {"name": "Ana Souza"}, "wa_id": "5511987654321"},
        ]
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return value


def _wa(*values: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]} for value in values
        ],
    }


def _wamid() -> str:
    return "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA" + uuid.uuid4().hex


def _text(wamid: str, body: str, sender: str = "16315551234") -> dict[str, Any]:
    return {"from": sender, "id": wamid, "timestamp": "1749416383", "type": "text", "text": {"body": body}}


async def test_a_whatsapp_text_is_published_once_with_its_fields(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    wamid = _wamid()
    payload = _wa(_wa_value([_text(wamid, "Olá, preciso de ajuda 🙂")]))
    async with aiohttp.ClientSession() as http:
        first = await _post(http, gateway, payload)
        assert first.status == 200, await first.text()
        for _ in range(3):
            assert (await _post(http, gateway, payload)).status == 200
    events = await inbound.settle(1.5)
    assert len(events) == 1, events
    env = events[0]
    assert env["type"] == "interaction.received"
    assert env["event_id"] == interaction_id_for("meta", wamid)
    p = env["payload"]
    assert p["channel"] == "whatsapp" and p["vendor"] == "meta"
    assert p["vendor_message_id"] == wamid
    assert p["text"] == "Olá, preciso de ajuda 🙂"
    assert p["sender"]["kind"] == "whatsapp"
    assert p["sender"]["value"] == "16315551234"
    assert p["sender"]["display_name"] == "Kerry Fisher"
    assert p["recipient"]["value"] == DISPLAY and p["recipient"]["namespace"] == PHONE_NUMBER_ID
    assert p["sent_at"].startswith("2025-06-08T")
    assert p["vendor_fields"]["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
    assert inbound.keys[0] == b"whatsapp:16315551234"


async def test_a_batched_post_is_one_event_per_message_and_status(gateway: Gateway) -> None:
    """Two WhatsApp entries with several message types and receipts, then a Messenger batch with an
    echo, a delivery receipt and a read watermark; redelivered whole, nothing is published twice."""
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    ids = [_wamid() for _ in range(7)]
    outbound = [_wamid(), _wamid()]
    first_entry = _wa_value(
        [
            _text(ids[0], "first"),
            {
                "from": "16315551234",
                "id": ids[1],
                "timestamp": "1749416390",
                "type": "image",
                "image": {
                    "caption": "my receipt",
                    "mime_type": "image/jpeg",
                    "sha256": "HgYhnCdVSw2Cq1gMwxW6QaVEiaTgpcf6HmBbTJZ1LAU=",
                    "id": "1003383421387256",
                },
            },
            {
                "from": "16315551234",
                "id": ids[2],
                "timestamp": "1749416391",
                "type": "interactive",
                "context": {"from": DISPLAY, "id": outbound[0]},
                "interactive": {"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}},
            },
        ],
        statuses=[
            {
                "id": outbound[0],
                "status": "delivered",
                "timestamp": "1749416392",
                "recipient_id": "16315551234",
                "conversation": {"id": "CONVERSATION_ID", "origin": {"type": "service"}},
                "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
            },
            {
                "id": outbound[1],
                "status": "failed",
                "timestamp": "1749416393",
                "recipient_id": "5511987654321",
                "errors": [{"code": 131047, "title": "Re-engagement message"}],
            },
        ],
    )
    second_entry = _wa_value(
        [
            {
                "from": "5511987654321",
                "id": ids[3],
                "timestamp": "1749416394",
                "type": "location",
                "location": {
                    "latitude": -23.55,
                    "longitude": -46.63,
                    "name": "Loja",
                    "address": "Av. Paulista",
                },
            },
            {
                "from": "5511987654321",
                "id": ids[4],
                "timestamp": "1749416395",
                "type": "reaction",
                "reaction": {"message_id": outbound[1], "emoji": "👍"},
            },
            {
                "from": "5511987654321",
                "id": ids[5],
                "timestamp": "1749416396",
                "type": "document",
                "document": {"filename": "invoice.pdf", "mime_type": "application/pdf", "id": "2002"},
            },
            {
                "from": "5511987654321",
                "id": ids[6],
                "timestamp": "1749416397",
                "type": "hologram",  # a type Meta may add one day
                "hologram": {"id": "3003"},
            },
        ]
    )
    whatsapp = _wa(first_entry, second_entry)
    page_id, psid = "1234567890", "24" + uuid.uuid4().hex[:14]
    mid, echo_mid, sent_mid = ("m_" + uuid.uuid4().hex for _ in range(3))
    messenger = {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": 1749416400000,
                "messaging": [
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": page_id},
                        "timestamp": 1749416399000,
                        "message": {
                            "mid": mid,
                            "text": "is my parcel coming?",
                            "attachments": [
                                {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/p.jpg"}}
                            ],
                        },
                    },
                    {
                        "sender": {"id": page_id},
                        "recipient": {"id": psid},
                        "timestamp": 1749416399500,
                        "message": {
                            "mid": echo_mid,
                            "is_echo": True,
                            "app_id": 1517776481860111,
                            "text": "hi",
                        },
                    },
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": page_id},
                        "timestamp": 1749416399600,
                        "delivery": {"mids": [sent_mid], "watermark": 1749416399000},
                    },
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": page_id},
                        "timestamp": 1749416399700,
                        "read": {"watermark": 1749416399000},
                    },
                ],
            }
        ],
    }
    async with aiohttp.ClientSession() as http:
        r = await _post(http, gateway, whatsapp)
        assert r.status == 200
        assert await r.json() == {"ok": True, "events": 9, "ignored": 0}
        m = await _post(http, gateway, messenger)
        assert m.status == 200
        assert await m.json() == {"ok": True, "events": 2, "ignored": 2}
        # Meta redelivers the whole batch: every event is a duplicate.
        assert (await _post(http, gateway, whatsapp)).status == 200
        assert (await _post(http, gateway, messenger)).status == 200
    events = await inbound.settle(2.0)
    assert len(events) == 11, [e["payload"].get("vendor_message_id") for e in events]
    received = {
        e["payload"]["vendor_message_id"]: e["payload"] for e in events if e["type"] == "interaction.received"
    }
    statuses = [e["payload"] for e in events if e["type"] == "interaction.status_changed"]
    assert set(received) == {*ids, mid}
    assert received[ids[1]]["text"] == "my receipt"
    assert received[ids[1]]["attachments"] == [
        {"url": "meta-media:1003383421387256", "content_type": "image/jpeg", "filename": None, "size": None}
    ]
    assert received[ids[2]]["text"] == "Yes"
    assert received[ids[2]]["thread"]["in_reply_to"] == outbound[0]
    assert received[ids[3]]["text"] == "Loja, Av. Paulista, (-23.55, -46.63)"
    assert received[ids[3]]["sender"]["display_name"] == "Ana Souza"
    assert received[ids[4]]["text"] == "👍" and received[ids[4]]["thread"]["in_reply_to"] == outbound[1]
    assert received[ids[5]]["attachments"][0]["filename"] == "invoice.pdf"
    assert received[ids[6]]["text"] is None
    assert received[ids[6]]["vendor_fields"]["message"]["hologram"] == {"id": "3003"}
    page = received[mid]
    assert page["channel"] == "messenger"
    assert page["sender"] == {**page["sender"], "kind": "messenger", "value": psid, "namespace": page_id}
    assert page["text"] == "is my parcel coming?"
    assert page["attachments"][0]["url"] == "https://scontent.xx.fbcdn.net/v/p.jpg"
    by_id = {s["vendor_message_id"]: s for s in statuses}
    assert set(by_id) == {*outbound, sent_mid}
    assert all(s["direction"] == "outbound" for s in statuses)
    assert by_id[outbound[0]]["status"] == "delivered"
    assert by_id[outbound[0]]["interaction_id"] == interaction_id_for("meta", outbound[0])
    assert by_id[outbound[1]]["status"] == "failed"
    assert by_id[outbound[1]]["error"] == "131047: Re-engagement message"
    assert by_id[outbound[1]]["customer_address"]["value"] == "5511987654321"
    assert by_id[sent_mid]["status"] == "delivered" and by_id[sent_mid]["channel"] == "messenger"


async def test_an_instagram_message_is_scoped_to_the_account(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    account, igsid, mid = "17841400000000000", "5" + uuid.uuid4().hex[:15], "aWdf" + uuid.uuid4().hex
    payload = {
        "object": "instagram",
        "entry": [
            {
                "id": account,
                "time": 1749416400000,
                "messaging": [
                    {
                        "sender": {"id": igsid},
                        "recipient": {"id": account},
                        "timestamp": 1749416399000,
                        "message": {"mid": mid, "text": "do you ship to Lisbon?"},
                    }
                ],
            }
        ],
    }
    async with aiohttp.ClientSession() as http:
        assert (await _post(http, gateway, payload)).status == 200
    (env,) = await inbound.wait_for(1)
    p = env["payload"]
    assert p["channel"] == "instagram"
    assert p["sender"]["kind"] == "instagram" and p["sender"]["namespace"] == account
    assert p["recipient"] == {**p["recipient"], "kind": "instagram", "value": account}
    assert inbound.keys[0] == f"instagram:{account}/{igsid}".encode()


async def test_updates_that_are_not_contacts_are_answered_200(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    template_update = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": "APPROVED",
                            "message_template_id": 1,
                            "message_template_name": "x",
                        },
                    }
                ],
            }
        ],
    }
    async with aiohttp.ClientSession() as http:
        r = await _post(http, gateway, template_update)
        assert r.status == 200
        assert await r.json() == {"ok": True, "events": 0, "ignored": 1}
        other = await _post(http, gateway, {"object": "permissions", "entry": [{"id": "1", "changes": []}]})
        assert other.status == 200
    assert await inbound.settle(1.0) == []


async def test_bad_and_missing_signatures_are_refused(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    payload = _wa(_wa_value([_text(_wamid(), "forged")]))
    body = json.dumps(payload).encode()
    async with aiohttp.ClientSession() as http:
        wrong = await _post(http, gateway, payload, secret="not-the-app-secret")
        assert wrong.status == 403
        assert (await wrong.json())["error"] == "bad_signature"
        missing = await _post(http, gateway, payload, signature="")
        assert missing.status == 401
        assert (await missing.json())["error"] == "missing_signature"
        # Signed, then re-serialised (e.g. unicode unescaped by a proxy): the bytes differ.
        tampered = await _post(
            http,
            gateway,
            body.replace(b"forged", b"Forged"),
            signature=_sign(_secret(gateway), body),
        )
        assert tampered.status == 403
        sha1 = await _post(http, gateway, payload, signature="sha1=" + "0" * 40)
        assert sha1.status == 403
        reason = (await sha1.json())["reason"]
        assert _secret(gateway) not in reason
    assert await inbound.settle(1.0) == []


async def test_malformed_json_and_wrong_content_type(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        broken = await _post(http, gateway, b'{"object": "page", "entry": [')
        assert broken.status == 400
        assert (await broken.json())["error"] == "malformed"
        not_an_object = await _post(http, gateway, b"[1, 2]")
        assert not_an_object.status == 400
        no_entries = await _post(http, gateway, {"object": "page"})
        assert no_entries.status == 400
        form = await _post(http, gateway, b"object=page", content_type="application/x-www-form-urlencoded")
        assert form.status == 415
        assert (await form.json())["error"] == "unsupported_media_type"


async def test_the_subscription_handshake(gateway: Gateway) -> None:
    token = gateway.settings.meta_verify_token.get_secret_value()  # type: ignore[union-attr]
    url = gateway.url + PATH
    async with aiohttp.ClientSession() as http:
        good = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
        async with http.get(url, params=good) as r:
            assert r.status == 200
            assert r.content_type == "text/plain"
            assert await r.text() == "1158201444"
        async with http.get(url, params={**good, "hub.verify_token": "guess"}) as r:
            assert r.status == 403
            body = await r.json()
            assert body["error"] == "verification_failed" and token not in body["reason"]
        async with http.get(url, params={"hub.mode": "subscribe", "hub.challenge": "1"}) as r:
            assert r.status == 403
        async with http.get(url, params={**good, "hub.mode": "unsubscribe"}) as r:
            assert r.status == 403
        async with http.get(url) as r:
            assert r.status == 403
            assert (await r.json())["error"] == "verification_failed"


async def test_without_secrets_everything_is_refused_503(
    kafka_bootstrap: str,
    make_database: MakeDatabase,
    topic_prefix: str,
) -> None:
    db = await make_database()
    async with (
        running_gateway(kafka_bootstrap, db, topic_prefix, META_APP_SECRET="", META_VERIFY_TOKEN="") as gw,
        aiohttp.ClientSession() as http,
    ):
        body = json.dumps(_wa(_wa_value([_text(_wamid(), "hi")]))).encode()
        r = await http.post(
            gw.url + PATH, data=body, headers={"Content-Type": "application/json", HEADER: _sign("x", body)}
        )
        assert r.status == 503
        assert (await r.json())["error"] == "vendor_not_configured"
        params = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
        async with http.get(gw.url + PATH, params=params) as g:
            assert g.status == 503
            assert (await g.json())["error"] == "vendor_not_configured"

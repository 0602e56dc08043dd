"""Mailgun routes through the real broker; signatures checked with mailgun's own SecurityGuard."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

import aiohttp
import orjson
import pytest
from mailgun.security import SecurityGuard

from omnirouter_shared.topics import Topic
from tests.gateway.harness import Gateway

pytestmark = pytest.mark.integration

PATH = "/webhooks/mailgun"


def signing_key(gw: Gateway) -> str:
    assert gw.settings.mailgun_signing_key is not None
    return gw.settings.mailgun_signing_key.get_secret_value()


def signature(key: str, timestamp: str, token: str) -> dict[str, str]:
    sig = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    # What Mailgun's SDK accepts is what Mailgun sends.
    assert SecurityGuard.verify_webhook(key, token, timestamp, sig, max_age_seconds=0)
    return {"timestamp": timestamp, "token": token, "signature": sig}


def route_post(mid: str, **extra: str) -> dict[str, str]:
    headers = [
        ["Received", "by mxa.mailgun.org"],
        ["Message-Id", mid],
        ["In-Reply-To", "<r1@support.example.com>"],
        ["References", "<r0@support.example.com> <r1@support.example.com>"],
        ["From", "Bob Customer <bob@example.org>"],
        ["To", "support@example.com"],
        ["Subject", "Re: your ticket"],
        ["Date", "Tue, 02 Dec 2025 10:00:00 +0000"],
    ]
    return {
        "recipient": "support@example.com",
        "sender": "bob@example.org",
        "from": "Bob Customer <bob@example.org>",
        "subject": "Re: your ticket",
        "body-plain": "Still broken.\n\n> earlier text",
        "stripped-text": "Still broken.",
        "message-headers": orjson.dumps(headers).decode(),
        "Message-Id": mid,
        **extra,
    }


async def post(gw: Gateway, fields: dict[str, str], *, multipart: bool = False) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        if multipart:
            form = aiohttp.FormData()
            for k, v in fields.items():
                form.add_field(k, v)
            form.add_field(
                "attachment-1", b"%PDF-1.4 fake", filename="invoice.pdf", content_type="application/pdf"
            )
            resp = await http.post(gw.url + PATH, data=form)
        else:
            resp = await http.post(gw.url + PATH, data=fields)
        await resp.read()
        return resp


async def test_route_is_published_with_threading_and_redelivery_is_a_duplicate(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    mid = f"<{uuid.uuid4().hex}@mail.example.org>"
    signed = signature(signing_key(gateway), str(int(time.time())), secrets.token_hex(25))
    fields = route_post(mid, **signed)
    first = await post(gateway, fields)
    assert first.status == 200, await first.text()
    # Mailgun retrying the same post (same token, same message) is a duplicate, not a replay.
    again = await post(gateway, fields)
    assert again.status == 200
    events = await inbound.settle(1.5)
    assert len(events) == 1, events
    p = events[0]["payload"]
    assert p["vendor"] == "mailgun" and p["channel"] == "email"
    assert p["vendor_message_id"] == mid
    assert p["sender"]["value"] == "bob@example.org"
    assert p["sender"]["display_name"] == "Bob Customer"
    assert p["recipient"]["value"] == "support@example.com"
    assert p["subject"] == "Re: your ticket"
    assert p["text"] == "Still broken.\n\n> earlier text"
    assert p["thread"]["in_reply_to"] == "<r1@support.example.com>"
    assert p["thread"]["references"] == ["<r0@support.example.com>", "<r1@support.example.com>"]
    assert p["sent_at"].startswith("2025-12-02T10:00:00")
    assert p["vendor_fields"]["stripped-text"] == "Still broken."
    assert "signature" not in p["vendor_fields"] and "token" not in p["vendor_fields"]


async def test_multipart_with_attachment(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    mid = f"<{uuid.uuid4().hex}@mail.example.org>"
    signed = signature(signing_key(gateway), str(int(time.time())), secrets.token_hex(25))
    resp = await post(gateway, route_post(mid, **signed, **{"attachment-count": "1"}), multipart=True)
    assert resp.status == 200, await resp.text()
    [event] = await inbound.wait_for(1)
    assert event["payload"]["attachments"] == [
        {
            "url": f"email-attachment:{mid.strip('<>')}/0",
            "content_type": "application/pdf",
            "filename": "invoice.pdf",
            "size": 13,
        }
    ]


async def test_token_replayed_with_another_message_is_refused(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    signed = signature(signing_key(gateway), str(int(time.time())), secrets.token_hex(25))
    assert (await post(gateway, route_post(f"<{uuid.uuid4().hex}@x>", **signed))).status == 200
    replay = await post(gateway, route_post(f"<{uuid.uuid4().hex}@x>", **signed))
    assert replay.status == 403
    assert (await replay.json())["error"] == "replayed"
    events = await inbound.settle(1.5)
    assert len(events) == 1


async def test_bad_missing_and_stale_signatures_publish_nothing(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    mid = f"<{uuid.uuid4().hex}@x>"
    now = str(int(time.time()))
    wrong = signature("not-the-key", now, secrets.token_hex(25))
    r = await post(gateway, route_post(mid, **wrong))
    assert r.status == 403 and (await r.json())["error"] == "bad_signature"
    assert signing_key(gateway) not in await r.text()
    r = await post(gateway, route_post(mid))
    assert r.status == 401
    stale = signature(signing_key(gateway), str(int(time.time()) - 3600), secrets.token_hex(25))
    r = await post(gateway, route_post(mid, **stale))
    assert r.status == 403 and (await r.json())["error"] == "stale_timestamp"
    assert await inbound.settle(1.0) == []


async def test_unprocessable_content_is_406_and_wrong_type_415(gateway: Gateway) -> None:
    signed = signature(signing_key(gateway), str(int(time.time())), secrets.token_hex(25))
    fields = route_post(f"<{uuid.uuid4().hex}@x>", **signed)
    fields["from"] = fields["sender"] = "not an address"
    fields["message-headers"] = "[]"
    r = await post(gateway, fields)
    assert r.status == 406, await r.text()
    assert (await r.json())["error"] == "unprocessable"
    async with aiohttp.ClientSession() as http:
        r2 = await http.post(gateway.url + PATH, json={"recipient": "x"})
        assert r2.status == 415

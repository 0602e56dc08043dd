"""Web chat both ways through the real broker and PostgreSQL: a chat backend's signed webhooks (signed
with the standardwebhooks package), the widget's browser endpoints, and replies pushed to the visitor's
socket through NOTIFY and resumed from a cursor after a reconnect."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from omnirouter_gateway.outbound.webchat import WebchatSender
from omnirouter_shared.contracts.common import Address, AddressKind, Channel
from omnirouter_shared.contracts.replies import ReplyRequested
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.topics import Topic
from tests.gateway.harness import Gateway

pytestmark = pytest.mark.integration


def secret(gw: Gateway) -> str:
    assert gw.settings.webchat_webhook_secret is not None
    return gw.settings.webchat_webhook_secret.get_secret_value()


def signed(
    gw: Gateway, body: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    when = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret(gw)).sign(msg_id, when, body.decode()),
        "Content-Type": "application/json",
    }


def chat_message(message_id: str, **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "conversation_id": "conv-42",
            "message_id": message_id,
            "sender": {"visitor_id": "visitor-7", "name": "Vera", "email": "vera@example.net"},
            "text": "Do you ship to Norway?",
            "attachments": [{"url": "https://cdn.example.net/a.png", "content_type": "image/png"}],
            "sent_at": "2025-12-02T10:00:00Z",
            **extra,
        }
    )


async def test_backend_message_is_published_once_with_claimed_email(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    mid = "m-" + uuid.uuid4().hex
    body = chat_message(mid)
    async with aiohttp.ClientSession() as http:
        r = await http.post(gateway.url + "/webhooks/webchat", data=body, headers=signed(gateway, body))
        assert r.status == 200, await r.text()
        # Redelivered by the backend (a new webhook-id, same message_id): deduplicated by message_id.
        r = await http.post(gateway.url + "/webhooks/webchat", data=body, headers=signed(gateway, body))
        assert r.status == 200
    events = await inbound.settle(1.5)
    assert len(events) == 1, events
    p = events[0]["payload"]
    assert p["channel"] == "webchat" and p["vendor"] == "webchat"
    assert p["vendor_message_id"] == mid
    assert p["sender"]["kind"] == "webchat" and p["sender"]["value"] == "visitor-7"
    assert p["sender"]["display_name"] == "Vera"
    assert p["claimed_identifiers"] == [
        {
            "kind": "email",
            "value": "vera@example.net",
            "namespace": None,
            "display_name": None,
            "verified": False,
        }
    ]
    assert p["thread"]["vendor_conversation_id"] == "conv-42"
    assert p["attachments"][0]["url"] == "https://cdn.example.net/a.png"
    assert p["sent_at"].startswith("2025-12-02T10:00:00")
    assert inbound.keys[0] == b"webchat:visitor-7"


async def test_backend_signatures_refused(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    body = chat_message("m-" + uuid.uuid4().hex)
    async with aiohttp.ClientSession() as http:
        url = gateway.url + "/webhooks/webchat"
        missing = await http.post(url, data=body, headers={"Content-Type": "application/json"})
        assert missing.status == 401
        stale = signed(gateway, body, at=datetime.now(UTC) - timedelta(minutes=10))
        r = await http.post(url, data=body, headers=stale)
        assert r.status == 403 and (await r.json())["error"] == "stale_timestamp"
        forged = {**signed(gateway, body), "webhook-signature": "v1,AAAA"}
        r = await http.post(url, data=body, headers=forged)
        assert r.status == 403 and (await r.json())["error"] == "bad_signature"
        tampered = signed(gateway, body)
        r = await http.post(url, data=body.replace(b"Norway", b"Mars"), headers=tampered)
        assert r.status == 403
        # Rotation: an old and the current signature side by side; one matching is enough.
        rotating = signed(gateway, body)
        rotating["webhook-signature"] = "v1,b2xkLXNpZw== " + rotating["webhook-signature"]
        r = await http.post(url, data=body, headers=rotating)
        assert r.status == 200
    assert len(await inbound.settle(1.5)) == 1


async def _session(http: aiohttp.ClientSession, gw: Gateway, **body: Any) -> dict[str, Any]:
    r = await http.post(gw.url + "/webchat/v1/sessions", json=body)
    assert r.status == 201, await r.text()
    data: dict[str, Any] = await r.json()
    return data


async def test_widget_session_message_and_token_checks(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    async with aiohttp.ClientSession() as http:
        s = await _session(http, gateway)
        assert s["visitor_id"].startswith("v_")
        # A returning visitor keeps its id.
        again = await _session(http, gateway, token=s["token"])
        assert again["visitor_id"] == s["visitor_id"] and again["token"] != ""
        url = gateway.url + "/webchat/v1/messages"
        auth = {"Authorization": "Bearer " + s["token"]}
        r = await http.post(url, json={"message_id": "w1", "text": "hello from the widget"}, headers=auth)
        assert r.status == 202, await r.text()
        assert (await r.json())["status"] == "accepted"
        r = await http.post(url, json={"message_id": "w1", "text": "hello from the widget"}, headers=auth)
        assert (await r.json())["status"] == "duplicate"
        # Forged: another visitor's id under this token's MAC.
        forged = s["token"].replace(s["visitor_id"], "v_" + "0" * 32)
        r = await http.post(url, json={"text": "x"}, headers={"Authorization": "Bearer " + forged})
        assert r.status == 401
        expired = _expired_token(gateway, s["visitor_id"])
        r = await http.post(url, json={"text": "x"}, headers={"Authorization": "Bearer " + expired})
        assert r.status == 401 and "expired" in (await r.json())["reason"]
        assert (await http.post(url, json={"text": "x"})).status == 401
        r = await http.post(url, data="text=x", headers={**auth, "Content-Type": "text/plain"})
        assert r.status == 415
        # CORS: only the configured origins (and the gateway's own) may call from a browser.
        r = await http.post(url, json={"text": "x"}, headers={**auth, "Origin": "https://evil.example"})
        assert r.status == 403
        pre = await http.options(url, headers={"Origin": gateway.settings.public_url})
        assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] == gateway.settings.public_url
        # An expired token still renews to the same visitor (within the renewal window).
        renewed = await _session(http, gateway, token=expired)
        assert renewed["visitor_id"] == s["visitor_id"]
    events = await inbound.settle(1.5)
    assert len(events) == 1
    p = events[0]["payload"]
    assert p["channel"] == "webchat" and p["vendor"] == "webchat"
    assert p["sender"]["value"] == s["visitor_id"]
    assert p["vendor_message_id"] == f"{s['visitor_id']}:w1"
    assert p["text"] == "hello from the widget"


def _expired_token(gw: Gateway, visitor_id: str) -> str:
    from omnirouter_gateway.webchat_browser import VisitorTokens

    assert gw.settings.webchat_token_secret is not None
    tokens = VisitorTokens(gw.settings.webchat_token_secret.get_secret_value(), 60, 86_400)
    token, _ = tokens.issue(visitor_id, time.time() - 3600)
    return token


def _reply(visitor_id: str, text: str) -> ReplyRequested:
    return ReplyRequested(
        reply_id="r-" + uuid.uuid4().hex,
        customer_id="c1",
        author="agent:alice",
        channel=Channel.WEBCHAT,
        to=Address(kind=AddressKind.WEBCHAT, value=visitor_id),
        text=text,
    )


async def _frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = orjson.loads(msg.data)
    return data


async def test_replies_reach_the_socket_and_resume_after_reconnect(gateway: Gateway) -> None:
    # The sender has no access to the hub: the push can only come through NOTIFY, as from a replica.
    sender = WebchatSender(gateway.settings)
    async with aiohttp.ClientSession() as http:
        s = await _session(http, gateway)
        stream = gateway.url.replace("http", "ws") + "/webchat/v1/stream"
        refused = await http.get(stream + "?token=v1.bogus.1.x")
        assert refused.status == 401
        ws = await http.ws_connect(stream, protocols=("webchat.v1", "bearer." + s["token"]))
        assert ws.protocol == "webchat.v1"
        ready = await _frame(ws)
        assert ready == {"type": "ready", "visitor_id": s["visitor_id"], "cursor": 0}
        first = _reply(s["visitor_id"], "Hi Vera, yes we do.")
        sent = await sender.send(first, http)
        frame = await _frame(ws)
        assert frame["text"] == "Hi Vera, yes we do." and frame["author"] == "agent"
        assert sent.vendor_message_id == f"webchat:{frame['cursor']}"
        # A redelivered reply is not pushed twice.
        assert (await sender.send(first, http)).vendor_message_id == sent.vendor_message_id
        cursor = frame["cursor"]
        await ws.close()
        # While the visitor is away, two more replies.
        await sender.send(_reply(s["visitor_id"], "Shipping takes 3 days."), http)
        await sender.send(_reply(s["visitor_id"], "Anything else?"), http)
        ws = await http.ws_connect(f"{stream}?token={s['token']}&cursor={cursor}")
        assert (await _frame(ws))["type"] == "ready"
        texts = [(await _frame(ws))["text"] for _ in range(2)]
        assert texts == ["Shipping takes 3 days.", "Anything else?"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.receive(), 1.0)
        await ws.close()


async def test_callback_to_a_chat_backend_is_signed(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    from tests.gateway.harness import running_gateway

    received: list[tuple[dict[str, str], bytes]] = []

    async def backend(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/replies", backend)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    db = await make_database()
    try:
        async with running_gateway(
            kafka_bootstrap, db, topic_prefix, WEBCHAT_CALLBACK_URL=f"http://127.0.0.1:{port}/replies"
        ) as gw:
            async with aiohttp.ClientSession() as http:
                await WebchatSender(gw.settings, gw.pool).send(_reply("visitor-7", "On its way"), http)
            [(headers, body)] = received
            payload = Webhook(secret(gw)).verify(body, headers)
            assert payload["type"] == "reply" and payload["visitor_id"] == "visitor-7"
            assert payload["text"] == "On its way"
    finally:
        await runner.cleanup()

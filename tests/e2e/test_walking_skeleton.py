"""Issue 2's done-when, end to end: a signed Twilio webhook becomes exactly one offer on an agent's
WebSocket, through the real broker, PostgreSQL and the four services as separate processes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from twilio.request_validator import RequestValidator

from tests.e2e.suite import Suite, running_suite

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "e2e"


async def _post_sms(
    http: aiohttp.ClientSession,
    suite: Suite,
    sid: str,
    body: str,
    sender: str,
    *,
    signature: str | None = None,
) -> aiohttp.ClientResponse:
    url = f"{suite.public_url}/webhooks/twilio/messaging"
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+18005550199",
        "Body": body,
        "NumMedia": "0",
    }
    sig = signature or RequestValidator(suite.env["TWILIO_AUTH_TOKEN"]).compute_signature(url, params)
    resp = await http.post(url, data=params, headers={"X-Twilio-Signature": sig})
    await resp.read()
    return resp


async def _frames(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type == aiohttp.WSMsgType.TEXT:
            out.append(orjson.loads(msg.data))
        else:
            break
    return out


async def _until(
    ws: aiohttp.ClientWebSocketResponse, kind: str, seconds: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        frame = orjson.loads(msg.data)
        seen.append(frame)
        if frame.get("type") == kind:
            return frame, seen
    raise AssertionError(f"no {kind!r} frame within {seconds}s; got {seen}")


async def test_a_signed_sms_becomes_exactly_one_offer(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    db = await make_database()
    async with (
        running_suite(kafka_bootstrap, db, topic_prefix, ARTIFACTS) as suite,
        aiohttp.ClientSession() as http,
    ):
        admin = {"Authorization": f"Bearer {suite.env['OMNI_ADMIN_TOKEN']}"}
        agent_id = f"alice-{uuid.uuid4().hex[:6]}"
        async with http.post(
            f"{suite.url('agent-presence')}/v1/agents",
            headers=admin,
            json={
                "id": agent_id,
                "name": "Alice",
                "skills": {"billing": 3, "general": 3},
                "capacity": {"sms": 3, "voice": 1},
            },
        ) as r:
            assert r.status == 201, await r.text()
            created = await r.json()
        assert created["id"] == agent_id and created["token"]

        ws_url = suite.url("agent-presence").replace("http", "ws", 1) + f"/v1/agents/{agent_id}/ws"
        async with http.ws_connect(ws_url, headers={"Authorization": f"Bearer {created['token']}"}) as ws:
            await ws.send_json({"type": "status", "status": "available"})
            await asyncio.sleep(1.0)  # the status travels presence -> inbox -> routing

            phone = "+1415555" + str(uuid.uuid4().int)[:4]
            sid = "SM" + uuid.uuid4().hex
            resp = await _post_sms(http, suite, sid, "Hi, I need help with my bill", phone)
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/xml")
            assert "<Response" in await resp.text()

            offer, _ = await _until(ws, "offer", 20)
            task = offer["task"]
            assert task["channel"] == "sms"
            assert task["customer_id"]
            assert [m["text"] for m in task["messages"]] == ["Hi, I need help with my bill"]

            # A redelivery of the same MessageSid, and a second message from the same phone: no new offer.
            assert (await _post_sms(http, suite, sid, "Hi, I need help with my bill", phone)).status == 200
            assert (
                await _post_sms(http, suite, "SM" + uuid.uuid4().hex, "Are you there?", phone)
            ).status == 200
            later = await _frames(ws, 4)
            assert [f for f in later if f.get("type") == "offer"] == [], later

            await ws.send_json({"type": "accept", "task_id": task["id"]})
            assigned, _ = await _until(ws, "assigned", 10)
            assert (assigned.get("task") or {}).get("id", assigned.get("task_id")) == task["id"]

            # A forged signature is refused and produces nothing.
            bad = await _post_sms(
                http,
                suite,
                "SM" + uuid.uuid4().hex,
                "forged",
                "+14155550111",
                signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            assert bad.status == 403
            assert [f for f in await _frames(ws, 2) if f.get("type") == "offer"] == []

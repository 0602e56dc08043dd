"""A desktop that disappears goes offline after the grace period; one that stays connected does not."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from omnirouter_shared.topics import Topic
from tests.presence.harness import ADMIN, create_agent, make_settings, next_frame, running_presence, watch

pytestmark = pytest.mark.integration

GRACE_S = 3.0


async def _read_forever(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def test_a_vanished_desktop_goes_offline_after_the_grace_period(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(kafka_bootstrap, await make_database(), topic_prefix, heartbeat_grace_s=GRACE_S)
    async with (
        watch(kafka_bootstrap, topic_prefix, Topic.ROUTING_INBOX) as inbox,
        running_presence(settings) as presence,
        aiohttp.ClientSession() as http,
    ):
        staying = await create_agent(http, presence)
        leaving = await create_agent(http, presence)
        sockets = []
        for agent in (staying, leaving):
            ws = await http.ws_connect(
                presence.ws_url(agent["id"]), headers={"Authorization": f"Bearer {agent['token']}"}
            )
            hello = await next_frame(ws, "state")
            assert hello["heartbeat_interval_s"] == pytest.approx(GRACE_S / 3)
            await ws.send_json({"type": "status", "status": "available"})
            await next_frame(ws, "ack")
            await ws.send_json({"type": "heartbeat", "ref": "hb"})
            assert (await next_frame(ws, "ack"))["ref"] == "hb"
            sockets.append(ws)
        await sockets[1].close()  # the second desktop disappears
        # aiohttp's client answers the server's pings only while something reads the socket.
        reader = asyncio.create_task(_read_forever(sockets[0]))

        _, offline = await inbox.wait_for(
            "agent.status_changed", lambda p: p["status"] == "offline", timeout=GRACE_S * 6
        )
        assert offline.payload == {"agent_id": leaving["id"], "status": "offline", "reason": "heartbeat_lost"}
        await asyncio.sleep(GRACE_S)
        offline_events = [
            e for e in inbox.of_type("agent.status_changed") if e.payload["status"] == "offline"
        ]
        assert [e.payload["agent_id"] for e in offline_events] == [leaving["id"]]

        async with http.get(f"{presence.url}/v1/agents", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
            states = {a["id"]: (a["state"], a["reason"]) for a in (await r.json())["agents"]}
        assert states == {staying["id"]: ("available", None), leaving["id"]: ("offline", "heartbeat_lost")}
        reader.cancel()
        await sockets[0].close()

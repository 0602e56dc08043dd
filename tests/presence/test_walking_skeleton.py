"""The agent contract of issue 2 through the real broker and PostgreSQL: create an agent, connect,
go available, receive an offer, accept it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import aiohttp
import pytest

from omnirouter_shared.contracts.routing import TaskAssigned
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.topics import Topic
from tests.presence.harness import (
    ADMIN,
    create_agent,
    make_settings,
    next_frame,
    offered,
    routing_stub,
    running_presence,
    task_view,
    watch,
)

pytestmark = pytest.mark.integration


async def test_agent_contract_offer_accept_assigned(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(kafka_bootstrap, await make_database(), topic_prefix)
    async with (
        watch(kafka_bootstrap, topic_prefix, Topic.ROUTING_INBOX) as inbox,
        running_presence(settings) as presence,
        routing_stub(settings) as routing,
        aiohttp.ClientSession() as http,
    ):
        created = await create_agent(http, presence, routing_domain="emea")
        agent_id = created["id"]
        key, upserted = await inbox.wait_for("agent.upserted", lambda p: p["agent_id"] == agent_id)
        assert key == "emea" and upserted.routing_domain == "emea"
        assert upserted.payload["capacity"] == {"sms": 2, "voice": 1}

        headers = {"Authorization": f"Bearer {created['token']}"}
        async with http.ws_connect(presence.ws_url(agent_id), headers=headers) as ws:
            state = await next_frame(ws, "state")
            assert state["status"] == "offline"
            await ws.send_json({"type": "status", "status": "available", "ref": "s1"})
            ack = await next_frame(ws, "ack")
            assert ack["ref"] == "s1" and ack["state"] == "available"
            await inbox.wait_for("agent.status_changed", lambda p: p["status"] == "available")

            offer = offered(agent_id, task_view())
            await routing(offer, agent_id)
            frame = await next_frame(ws, "offer")
            assert frame["offer_id"] == offer.offer_id
            assert frame["task"]["id"] == offer.task.id
            assert frame["task"]["messages"][0]["text"] == "Hi, my bill is wrong"
            assert frame["expires_at"]

            await ws.send_json({"type": "accept", "task_id": offer.task.id})
            ack = await next_frame(ws, "ack")
            assert ack["offer_id"] == offer.offer_id
            key, accepted = await inbox.wait_for("offer.accepted")
            assert key == "emea"
            assert accepted.payload == {
                "offer_id": offer.offer_id,
                "task_id": offer.task.id,
                "agent_id": agent_id,
            }

            await routing(TaskAssigned(task_id=offer.task.id, agent_id=agent_id, task=offer.task), agent_id)
            assigned = await next_frame(ws, "assigned")
            assert assigned["task"]["id"] == offer.task.id


async def test_the_service_process_migrates_serves_and_stops_on_sigterm(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": await make_database(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "OMNI_TOPIC_PREFIX": topic_prefix,
        "OMNI_ADMIN_TOKEN": ADMIN,
        "OMNI_API_TOKENS": "a,b",
        "HTTP_PORT": str(port),
        "KAFKA_REBALANCE_TIMEOUT_MS": "1000",
        "LOG_FORMAT": "text",
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "omnirouter_presence",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await migrate.communicate()
    assert migrate.returncode == 0, out.decode()
    bad = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "omnirouter_presence",
        env={**env, "OMNI_ADMIN_TOKEN": "", "HTTP_PORT": "x"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await bad.communicate()
    assert bad.returncode == 2
    assert "OMNI_ADMIN_TOKEN is required" in out.decode() and "HTTP_PORT is invalid" in out.decode()

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "omnirouter_presence",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the presence process never became ready")
            created = await create_agent(http, f"http://127.0.0.1:{port}")
            ws = await http.ws_connect(
                f"ws://127.0.0.1:{port}/v1/agents/{created['id']}/ws",
                headers={"Authorization": f"Bearer {created['token']}"},
            )
            await next_frame(ws, "state")
            # An open desktop is told to reconnect elsewhere (1012) rather than held until a time-out.
            started = asyncio.get_running_loop().time()
            proc.send_signal(signal.SIGTERM)
            msg = await ws.receive(timeout=10)
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1012), msg
            await ws.close()
            out, _ = await asyncio.wait_for(proc.communicate(), 20)
            assert proc.returncode == 0, out.decode()[-2000:]
            assert asyncio.get_running_loop().time() - started < 8
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

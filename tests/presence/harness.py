"""Run agent-presence in-process against the session's real broker and a fresh PostgreSQL database, and
watch the topics it writes to."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel

from omnirouter_presence.app import MIGRATIONS, build_app
from omnirouter_presence.repository import SCHEMA
from omnirouter_presence.settings import PresenceSettings
from omnirouter_shared.contracts.common import Address, AddressKind, Channel
from omnirouter_shared.contracts.envelope import Envelope, decode_envelope, new_envelope
from omnirouter_shared.contracts.routing import TaskMessage, TaskOffered, TaskView
from omnirouter_shared.db import migrate
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.topics import Topic

ADMIN = "test-admin-token"
API_TOKEN = "test-api-token"


def make_settings(bootstrap: str, database_url: str, prefix: str, **overrides: Any) -> PresenceSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "database_url": database_url,
        "topic_prefix": prefix,
        "admin_token": ADMIN,
        "api_tokens": (API_TOKEN,),
        "http_host": "127.0.0.1",
        "http_port": free_port(),
        "kafka_rebalance_timeout_ms": 1000,
        "kafka_session_timeout_ms": 6000,
        "shutdown_timeout_s": 5,
        "heartbeat_grace_s": 30,
        "webhook_backoff_base_s": 0.2,
        "webhook_backoff_max_s": 1.0,
    }
    values.update(overrides)
    return PresenceSettings.model_validate(values)


@dataclass
class Presence:
    settings: PresenceSettings
    app: web.Application

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    def ws_url(self, agent_id: str) -> str:
        return self.url.replace("http", "ws", 1) + f"/v1/agents/{agent_id}/ws"


async def _wait_ready(url: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return
                    body = await r.text()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"presence not ready after {timeout}s: {body}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_presence(settings: PresenceSettings, *, migrated: bool = False) -> AsyncIterator[Presence]:
    if not migrated:
        await migrate(settings.database_url, SCHEMA, MIGRATIONS)
    app = await build_app(settings)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.http_port)
    await site.start()
    try:
        presence = Presence(settings, app)
        await _wait_ready(presence.url)
        yield presence
    finally:
        await runner.cleanup()


@dataclass
class TopicWatch:
    """Every event written to one topic since the watch started (reads all partitions from the start:
    the topics are fresh per test)."""

    consumer: AIOKafkaConsumer
    seen: list[tuple[bytes | None, Envelope]] = field(default_factory=list)

    async def wait_for(
        self, event_type: str, pred: Callable[[dict[str, Any]], bool] = lambda _: True, timeout: float = 15
    ) -> tuple[str | None, Envelope]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for key, env in self.seen:
                if env.type == event_type and pred(env.payload):
                    return (key.decode() if key else None), env
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"no {event_type} within {timeout}s; saw {[e.type for _, e in self.seen]}"
                )
            for msgs in (await self.consumer.getmany(timeout_ms=int(min(left, 0.3) * 1000))).values():
                self.seen.extend((m.key, decode_envelope(m.value)) for m in msgs)

    async def drain(self, seconds: float) -> list[Envelope]:
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            for msgs in (await self.consumer.getmany(timeout_ms=int(min(left, 0.3) * 1000))).values():
                self.seen.extend((m.key, decode_envelope(m.value)) for m in msgs)
        return [e for _, e in self.seen]

    def of_type(self, event_type: str) -> list[Envelope]:
        return [e for _, e in self.seen if e.type == event_type]


@contextlib.asynccontextmanager
async def watch(bootstrap: str, prefix: str, topic: Topic) -> AsyncIterator[TopicWatch]:
    consumer = AIOKafkaConsumer(
        f"{prefix}{topic}",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        yield TopicWatch(consumer)
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def routing_stub(settings: PresenceSettings) -> AsyncIterator[Callable[..., Any]]:
    """Publishes decisions on the test's topics as routing would (key = agent id)."""
    producer = EventProducer(settings, client_id="test-routing")
    await producer.start()

    async def publish(payload: BaseModel, agent_id: str, *, event_id: str | None = None) -> str:
        env = new_envelope(payload, producer="routing", event_id=event_id)
        await producer.publish(Topic.ROUTING_DECISIONS, agent_id, env)
        return env.event_id

    try:
        yield publish
    finally:
        await producer.stop()


def task_view(
    task_id: str | None = None, customer_id: str | None = None, text: str = "Hi, my bill is wrong"
) -> TaskView:
    now = datetime.now(UTC)
    phone = Address(kind=AddressKind.PHONE, value="+14155550100")
    business = Address(kind=AddressKind.PHONE, value="+18005550199")
    return TaskView(
        id=task_id or f"task-{uuid.uuid4().hex[:8]}",
        conversation_id=f"conv-{uuid.uuid4().hex[:8]}",
        customer_id=customer_id or f"cust-{uuid.uuid4().hex[:8]}",
        customer_name="Carla Customer",
        channel=Channel.SMS,
        queue="billing",
        priority=5,
        required_skills={"billing": 1},
        messages=(
            TaskMessage(
                interaction_id=str(uuid.uuid4()),
                channel=Channel.SMS,
                sender=phone,
                text=text,
                received_at=now,
            ),
        ),
        reply_to=phone,
        reply_from=business,
        created_at=now,
    )


def offered(agent_id: str, task: TaskView, *, ttl_s: float = 60) -> TaskOffered:
    return TaskOffered(
        offer_id=f"offer-{uuid.uuid4().hex[:8]}",
        agent_id=agent_id,
        task=task,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
    )


async def create_agent(http: aiohttp.ClientSession, presence: Presence | str, **body: Any) -> dict[str, Any]:
    """Create an agent through the admin API of a running presence (or the presence at a base URL)."""
    base = presence if isinstance(presence, str) else presence.url
    agent_id = body.pop("id", None) or f"agent-{uuid.uuid4().hex[:8]}"
    payload = {
        "id": agent_id,
        "name": "Alice",
        "skills": {"billing": 3},
        "capacity": {"sms": 2, "voice": 1},
        **body,
    }
    async with http.post(
        f"{base}/v1/agents", json=payload, headers={"Authorization": f"Bearer {ADMIN}"}
    ) as r:
        assert r.status == 201, await r.text()
        created: dict[str, Any] = await r.json()
        return created


async def next_frame(
    ws: aiohttp.ClientWebSocketResponse,
    frame_type: str,
    timeout: float = 15,
    *,
    seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    got: list[dict[str, Any]] = [] if seen is None else seen
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"socket ended ({msg.type}) waiting for {frame_type}; got {got}")
        frame: dict[str, Any] = orjson.loads(msg.data)
        got.append(frame)
        if frame.get("type") == frame_type:
            return frame
    raise AssertionError(f"no {frame_type!r} frame within {timeout}s; got {got}")


async def frames_for(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        out.append(orjson.loads(msg.data))
    return out


async def wait_feed(
    http: aiohttp.ClientSession, presence: Presence, agent_id: str, token: str, seq: int, timeout: float = 15
) -> dict[str, Any]:
    """Wait until the agent's feed holds ``seq`` frames (decisions are consumed asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with http.get(
            f"{presence.url}/v1/agents/{agent_id}/state", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200, await r.text()
            state: dict[str, Any] = await r.json()
        if state["seq"] >= seq:
            return state
        assert asyncio.get_running_loop().time() < deadline, f"feed at {state['seq']}, expected {seq}"
        await asyncio.sleep(0.1)


async def wait_snapshot(
    http: aiohttp.ClientSession,
    presence: Presence,
    agent_id: str,
    token: str,
    pred: Callable[[dict[str, Any]], bool],
    timeout: float = 15,
) -> dict[str, Any]:
    """Poll the agent's snapshot (GET .../state) until ``pred`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with http.get(
            f"{presence.url}/v1/agents/{agent_id}/state", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200, await r.text()
            snapshot: dict[str, Any] = await r.json()
        if pred(snapshot):
            return snapshot
        assert asyncio.get_running_loop().time() < deadline, f"condition not met; last snapshot {snapshot}"
        await asyncio.sleep(0.1)

"""Run routing in-process against the session's real broker and a fresh PostgreSQL database, feed its
inbox, and watch the decisions it publishes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel

from omnirouter_routing.app import COMPONENTS, MIGRATIONS, SCHEMA, build_app
from omnirouter_routing.service.processor import RoutingProcessor
from omnirouter_routing.settings import RoutingSettings
from omnirouter_shared.contracts.envelope import Envelope, decode_envelope, new_envelope
from omnirouter_shared.db import migrate
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.topics import Topic

ADMIN = "test-admin-token"
API_TOKEN = "test-api-token"
DOMAIN = "default"

FAST_CONFIG = """
version: 1
default_queue: general
queues:
  general: {strategy: longest_idle}
timers:
  offer_timeout: {offer_timeout}
  decline_cooldown: 120
"""


def write_config(path: Path, offer_timeout: float = 60.0) -> Path:
    path.write_text(FAST_CONFIG.replace("{offer_timeout}", str(offer_timeout)), encoding="utf-8")
    return path


def make_settings(
    bootstrap: str, database_url: str, prefix: str, config: Path, **overrides: Any
) -> RoutingSettings:
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
        "routing_config": config,
        "config_poll_interval_s": 0.2,
        "tick_interval_s": 0.2,
        "snapshot_interval_s": 0.3,
    }
    values.update(overrides)
    return RoutingSettings.model_validate(values)


@dataclass
class Routing:
    settings: RoutingSettings
    app: web.Application
    runner: web.AppRunner

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    @property
    def processor(self) -> RoutingProcessor:
        return self.app[COMPONENTS].processor

    async def stop(self) -> None:
        """Graceful: finish the batch in flight, commit, leave the group, save a final snapshot."""
        await self.runner.cleanup()

    async def kill(self) -> None:
        """A crash of the processing: the consume loop and the tickers are cancelled mid-flight, nothing
        more is committed and no final snapshot is written. (The group membership is then closed rather
        than left to expire, only so the test does not wait out the session time-out.)"""
        parts = self.app[COMPONENTS]
        await parts.processor.close()
        loop = parts.consumer
        task, consumer = loop._task, loop._consumer
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        loop._task, loop._consumer = None, None
        # Forget the state so the app's clean-up has nothing to snapshot.
        parts.processor._parts.clear()
        if consumer is not None:
            await consumer.stop()
        await self.runner.cleanup()


async def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    body = ""
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return
                    body = await r.text()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"routing not ready after {timeout}s: {body}")
            await asyncio.sleep(0.1)


async def prepare_database(url: str) -> None:
    await migrate(url, SCHEMA, MIGRATIONS)


async def start_routing(settings: RoutingSettings) -> Routing:
    app = await build_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    routing = Routing(settings, app, runner)
    try:
        await wait_ready(routing.url)
    except BaseException:
        await runner.cleanup()
        raise
    return routing


class Inbox:
    """Writes contract events into the routing inbox, keyed by routing domain like every producer."""

    def __init__(self, producer: EventProducer) -> None:
        self._producer = producer

    async def send(self, payload: BaseModel, *, event_id: str | None = None, domain: str = DOMAIN) -> str:
        env = new_envelope(payload, producer="test", routing_domain=domain, event_id=event_id)
        await self._producer.publish(Topic.ROUTING_INBOX, domain, env)
        return env.event_id


@dataclass
class DecisionWatcher:
    """Reads omni.routing.decisions from the beginning, in the background."""

    bootstrap: str
    topic: str
    seen: list[Envelope] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            self.seen.append(decode_envelope(record.value))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def of_type(
        self, event_type: str, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[Envelope]:
        return [e for e in self.seen if e.type == event_type and (where is None or where(e.payload))]

    async def wait_for(
        self,
        event_type: str,
        where: Callable[[dict[str, Any]], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 15,
    ) -> list[Envelope]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = self.of_type(event_type, where)
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                types = [e.type for e in self.seen]
                raise AssertionError(f"expected {count} x {event_type}, found {len(found)}; seen {types}")
            await asyncio.sleep(0.05)

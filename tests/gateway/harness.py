"""The gateway app in-process on a loopback port, against the session's real broker and a fresh
database, and a reader of what it published."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from omnirouter_gateway.app import COMPONENTS, MIGRATIONS, SCHEMA, build_app
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.db.migrations import migrate
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.topics import Topic

ROOT = Path(__file__).resolve().parents[2]


def dev_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in (ROOT / "deploy" / "config" / "dev.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            env[k] = v
    return env


class TopicReader:
    """Reads one topic (under the test's prefix) from the beginning."""

    def __init__(self, bootstrap: str, name: str) -> None:
        self._consumer = AIOKafkaConsumer(
            name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
        )
        self.seen: list[dict[str, Any]] = []
        self.keys: list[bytes | None] = []

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def _pull(self, timeout_s: float) -> None:
        batch = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=1000)
        for records in batch.values():
            for record in records:
                self.keys.append(record.key)
                self.seen.append(orjson.loads(record.value) if record.value else {})

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """At least ``count`` envelopes in total; returns all seen so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.seen) < count and loop.time() < deadline:
            await self._pull(0.2)
        assert len(self.seen) >= count, f"expected {count} events, got {len(self.seen)}: {self.seen}"
        return self.seen

    async def settle(self, seconds: float = 1.5) -> list[dict[str, Any]]:
        """Everything that arrives within ``seconds`` (to prove nothing more does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            await self._pull(0.2)
        return self.seen


@dataclass
class Gateway:
    url: str
    settings: GatewaySettings
    app: web.Application
    bootstrap: str
    readers: list[TopicReader] = field(default_factory=list)

    async def reader(self, topic: Topic) -> TopicReader:
        reader = TopicReader(self.bootstrap, self.settings.topic(topic))
        await reader.start()
        self.readers.append(reader)
        return reader

    @property
    def pool(self):  # type: ignore[no-untyped-def]
        return self.app[COMPONENTS].pool


@contextlib.asynccontextmanager
async def running_gateway(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, **env: str
) -> AsyncIterator[Gateway]:
    await migrate(database_url, SCHEMA, MIGRATIONS)
    port = free_port()
    values = {
        **dev_env(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "OMNI_TOPIC_PREFIX": topic_prefix,
        "OMNI_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HTTP_PORT": str(port),
        "KAFKA_REBALANCE_TIMEOUT_MS": "1000",
        # Tansu holds a new group's first join for the session time-out: keep it short in tests.
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "400",
        "LOG_FORMAT": "text",
        **env,
    }
    settings = GatewaySettings.from_env(values)
    app = await build_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    gateway = Gateway(f"http://127.0.0.1:{port}", settings, app, kafka_bootstrap)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                async with http.get(gateway.url + "/readyz") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.1)
        yield gateway
    finally:
        for reader in gateway.readers:
            await reader.stop()
        await runner.cleanup()

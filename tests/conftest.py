"""Session fixtures: one real broker and one real PostgreSQL for the whole run.

With KAFKA_BOOTSTRAP_SERVERS / OMNI_TEST_DATABASE_URL set, those servers are used instead of the
embedded ones (e.g. a CI job with real Apache Kafka). Every test that needs isolation gets its own
topic prefix and its own database, so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from omnirouter_shared.kafka.admin import ensure_topics

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from omnirouter_shared.devstack.broker import start_broker

    (ROOT / ".data").mkdir(exist_ok=True)
    broker = start_broker(log_path=ROOT / ".data" / "test-broker.log")
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    external = os.environ.get("OMNI_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from omnirouter_shared.devstack.postgres import start_postgres

    pg = start_postgres(ROOT / ".data" / f"test-pg-{os.getpid()}", fresh=True)
    try:
        yield pg.url()
    finally:
        pg.stop()
        import shutil

        shutil.rmtree(pg.datadir, ignore_errors=True)


MakeDatabase = Callable[[], Awaitable[str]]


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
async def make_database(pg_admin_url: str) -> AsyncIterator[MakeDatabase]:
    """Create fresh, empty databases on demand (dropped at the end of the test)."""
    created: list[str] = []

    async def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return _with_database(pg_admin_url, name)

    yield make
    conn = await asyncpg.connect(pg_admin_url)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def topic_prefix(kafka_bootstrap: str) -> str:
    """A fresh set of every registry topic under a unique prefix (3 partitions each, to keep group
    assignment fast)."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(kafka_bootstrap, prefix=prefix, partitions_override=3)
    return prefix

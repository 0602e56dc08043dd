"""Fixtures for routing's integration tests: fresh topics and database, an inbox writer, a decision
reader. Every test here needs the real broker and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.settings import ServiceSettings
from omnirouter_shared.topics import Topic
from tests.routing.integration.harness import DecisionWatcher, Inbox, prepare_database

pytestmark = pytest.mark.integration


@pytest.fixture
async def routing_db(make_database: Callable[[], Awaitable[str]]) -> str:
    url = await make_database()
    await prepare_database(url)
    return url


@pytest.fixture
async def inbox(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Inbox]:
    producer = EventProducer(
        ServiceSettings(
            kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, service_name="test"
        )
    )
    await producer.start()
    try:
        yield Inbox(producer)
    finally:
        await producer.stop()


@pytest.fixture
async def decisions(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[DecisionWatcher]:
    watcher = DecisionWatcher(kafka_bootstrap, f"{topic_prefix}{Topic.ROUTING_DECISIONS}")
    await watcher.start()
    try:
        yield watcher
    finally:
        await watcher.stop()

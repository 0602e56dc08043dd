from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import MakeDatabase
from tests.gateway.fake_vendors import FakeVendors, outbound_gateway
from tests.gateway.harness import Gateway, running_gateway


@pytest.fixture
async def gateway(kafka_bootstrap: str, make_database, topic_prefix: str) -> AsyncIterator[Gateway]:  # type: ignore[no-untyped-def]
    db = await make_database()
    async with running_gateway(kafka_bootstrap, db, topic_prefix) as gw:
        yield gw


@pytest.fixture
async def fake() -> AsyncIterator[FakeVendors]:
    """Fake vendor APIs on loopback that check every request as the vendor would."""
    vendors = FakeVendors()
    await vendors.start()
    try:
        yield vendors
    finally:
        await vendors.stop()


@pytest.fixture
async def gw(
    kafka_bootstrap: str, make_database: MakeDatabase, topic_prefix: str, fake: FakeVendors
) -> AsyncIterator[Gateway]:
    """A gateway whose vendor API base URLs point at ``fake``."""
    async with outbound_gateway(kafka_bootstrap, await make_database(), topic_prefix, fake) as gateway:
        yield gateway

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.gateway.harness import Gateway, running_gateway


@pytest.fixture
async def gateway(kafka_bootstrap: str, make_database, topic_prefix: str) -> AsyncIterator[Gateway]:  # type: ignore[no-untyped-def]
    db = await make_database()
    async with running_gateway(kafka_bootstrap, db, topic_prefix) as gw:
        yield gw

"""Fixtures for identity tests that run through the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

import omnirouter_identity
from omnirouter_identity.resolution import Outcome, Resolver
from omnirouter_identity.store.graph import Observation
from omnirouter_identity.store.tx import serializable
from omnirouter_shared.contracts.common import Address
from omnirouter_shared.db import create_pool, migrate
from tests.identity.helpers import POLICY

MIGRATIONS = Path(omnirouter_identity.__file__).parent / "migrations"


@pytest.fixture
async def identity_url(make_database: Callable[[], Awaitable[str]]) -> str:
    url = await make_database()
    await migrate(url, "identity", MIGRATIONS)
    return url


@pytest.fixture
async def pool(identity_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(identity_url, schema="identity", min_size=1, max_size=4)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(POLICY)


Observe = Callable[..., Awaitable[Outcome]]


def pid(outcome: Outcome) -> str:
    """The customer id of an outcome that was not suppressed."""
    assert outcome.profile_id is not None
    return outcome.profile_id


@pytest.fixture
def observe(pool: asyncpg.Pool, resolver: Resolver) -> Observe:
    counter = iter(range(1_000_000))

    async def run(*addresses: Address, at: datetime | None = None, using: Resolver | None = None) -> Outcome:
        r = using or resolver
        n = next(counter)
        obs = Observation(source="test", observed_at=at or datetime.now(UTC), interaction_id=f"i-{n}")

        async def work(conn: asyncpg.Connection) -> Outcome:
            return await r.resolve(conn, addresses, obs, source_id=f"i-{n}")

        outcome = await serializable(pool, work)
        r.after_commit(outcome)
        return outcome

    return run

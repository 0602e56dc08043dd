"""Two resolver instances (own pools, own caches) racing on the same identifiers end in one state."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import asyncpg

from omnirouter_identity.resolution import Outcome, Resolver
from omnirouter_identity.store.graph import Observation
from omnirouter_identity.store.tx import serializable
from omnirouter_shared.contracts.common import Address
from omnirouter_shared.db import create_pool
from tests.identity.helpers import POLICY, addr


async def _observe(pool: asyncpg.Pool, resolver: Resolver, n: str, addresses: list[Address]) -> Outcome:
    obs = Observation(source="race", observed_at=datetime.now(UTC), interaction_id=n)

    async def work(conn: asyncpg.Connection) -> Outcome:
        return await resolver.resolve(conn, addresses, obs, source_id=n)

    outcome = await serializable(pool, work)
    resolver.after_commit(outcome)
    return outcome


async def test_two_resolvers_racing_on_the_same_identifiers(identity_url: str) -> None:
    pools = [await create_pool(identity_url, schema="identity", min_size=2, max_size=3) for _ in range(2)]
    resolvers = [Resolver(POLICY), Resolver(POLICY)]
    # Person-level verified ids without e-mails or strong ids: no guard rail depends on arrival order,
    # so whatever the interleaving, the result must be the connected components of the events.
    pool_of_ids = [addr("phone", f"+1415555{1000 + i}") for i in range(4)] + [
        addr("telegram", str(7000 + i)) for i in range(4)
    ]
    rnd = random.Random(7)
    events = [rnd.sample(pool_of_ids, rnd.choice((1, 2, 2))) for _ in range(60)]
    try:
        await asyncio.gather(
            *(_observe(pools[i % 2], resolvers[i % 2], f"e{i}", e) for i, e in enumerate(events))
        )
        pool = pools[0]
        # Every identifier lives on exactly one active profile (the constraint makes a second row
        # impossible; this checks no one landed on a merged profile).
        stray = await pool.fetchval(
            "SELECT count(*) FROM identifiers i JOIN profiles p ON p.id = i.profile_id WHERE p.status <> 'active'"
        )
        assert stray == 0
        owners = {
            r["value"]: r["profile_id"] for r in await pool.fetch("SELECT value, profile_id FROM identifiers")
        }
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent.setdefault(x, x) != x:
                x = parent[x]
            return x

        for e in events:
            values = [a.value for a in e]
            for v in values:
                find(v)
            if len(values) == 2:
                parent[find(values[0])] = find(values[1])
        for a_value in owners:
            for b_value in owners:
                same_component = find(a_value) == find(b_value)
                assert (owners[a_value] == owners[b_value]) == same_component, (a_value, b_value)
        # A merge is recorded once per absorbed profile, whatever instance decided it.
        dupes = await pool.fetchval(
            "SELECT count(*) FROM (SELECT absorbed_id FROM merges GROUP BY absorbed_id HAVING count(*) > 1) d"
        )
        assert dupes == 0
    finally:
        for p in pools:
            await p.close()

from __future__ import annotations

import asyncpg

from tests.identity.conftest import Observe
from tests.identity.helpers import addr


async def test_returning_customer_is_found_and_the_cache_serves_the_next_contact(
    observe: Observe, pool: asyncpg.Pool
) -> None:
    first = await observe(addr("phone", "+14155550100"), addr("email", "a@shop.io"))
    assert first.is_new and first.profile_id
    second = await observe(addr("phone", "(415) 555-0100"))
    assert second.profile_id == first.profile_id and not second.is_new
    third = await observe(addr("phone", "+14155550100"))
    assert third.profile_id == first.profile_id
    assert await pool.fetchval("SELECT count(*) FROM identifiers") == 2
    assert await pool.fetchval("SELECT count(*) FROM link_evidence") == 2

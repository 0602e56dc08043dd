from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from omnirouter_shared.db import claim_events, create_pool, migrate
from omnirouter_shared.db.migrations import MigrationError


async def test_migrations_apply_once_in_order_and_detect_edits(make_database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = await make_database()
    (tmp_path / "001_things.sql").write_text("CREATE TABLE things (id int primary key);")
    (tmp_path / "002_more.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    assert await migrate(url, "svc", tmp_path) == ["001_things.sql", "002_more.sql"]
    assert await migrate(url, "svc", tmp_path) == []
    (tmp_path / "002_more.sql").write_text("ALTER TABLE things ADD COLUMN other text;")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(url, "svc", tmp_path)


async def test_claim_events_is_first_writer_wins_and_rolls_back_with_the_transaction(
    make_database, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = await make_database()
    await migrate(url, "svc", tmp_path)
    pool = await create_pool(url, schema="svc")
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():
                assert await claim_events(conn, "c", ["a", "b", "a"]) == {"a", "b"}
            assert await claim_events(conn, "c", ["a", "c"]) == {"c"}
            assert await claim_events(conn, "other", ["a"]) == {"a"}
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    assert await claim_events(conn, "c", ["d"]) == {"d"}
                    raise RuntimeError("effects failed")
            assert await claim_events(conn, "c", ["d"]) == {"d"}
    finally:
        await pool.close()


async def test_pool_uses_the_service_schema(make_database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = await make_database()
    (tmp_path / "001_t.sql").write_text("CREATE TABLE mine (x int);")
    await migrate(url, "alpha", tmp_path)
    pool = await create_pool(url, schema="alpha")
    try:
        assert await pool.fetchval("SELECT count(*) FROM mine") == 0
    finally:
        await pool.close()
    with pytest.raises(ValueError):
        await create_pool(url, schema="bad;schema")
    conn = await asyncpg.connect(url)
    await conn.close()

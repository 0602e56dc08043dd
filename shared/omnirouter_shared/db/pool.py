"""asyncpg pools whose connections see only their service's schema first."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema(schema: str) -> str:
    if not _SCHEMA.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def keep_session(_conn: asyncpg.Connection) -> None:
    """Release a connection to the pool without asyncpg's default reset query.

    asyncpg's default runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on
    every release: one more round trip (and one more statement for PostgreSQL to parse) per
    ``pool.fetch``/``pool.execute``/``acquire``, on every hot path. Pooled connections here never change
    their session: LISTEN uses dedicated connections (presence hub, web chat), the migration advisory
    lock its own connection, and ``SET LOCAL``/cursors end with their transaction. asyncpg still rolls
    back a transaction left open and drops listeners before calling this."""


async def create_pool(
    dsn: str, *, schema: str, min_size: int = 1, max_size: int = 10, **kwargs: Any
) -> asyncpg.Pool:
    check_schema(schema)
    kwargs.setdefault("reset", keep_session)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": f"{schema},public", "application_name": f"omnirouter-{schema}"},
        command_timeout=30,
        **kwargs,
    )
    assert pool is not None
    return pool


async def pool_healthy(pool: asyncpg.Pool) -> bool:
    try:
        async with pool.acquire(timeout=2) as conn:
            return bool(await conn.fetchval("SELECT 1", timeout=2) == 1)
    except (OSError, asyncpg.PostgresError, TimeoutError, asyncpg.InterfaceError):
        return False

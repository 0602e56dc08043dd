"""Forward-only SQL migrations per service schema: ``NNN_name.sql`` applied once each, in order, under an
advisory lock so that several replicas (or a Job and a pod) starting together do not race."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import asyncpg

from omnirouter_shared.db.pool import check_schema
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

_FILE = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")

_BASE = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {schema}.processed_events (
    consumer text NOT NULL,
    event_id text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS processed_events_at ON {schema}.processed_events (processed_at);
"""


class MigrationError(RuntimeError):
    pass


def discover(migrations_dir: Path) -> list[tuple[int, str, str]]:
    found = []
    for path in sorted(migrations_dir.glob("*.sql")):
        m = _FILE.match(path.name)
        if not m:
            raise MigrationError(f"migration file {path.name} does not match NNN_name.sql")
        found.append((int(m.group(1)), path.name, path.read_text()))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {migrations_dir}")
    return found


async def migrate(dsn: str, schema: str, migrations_dir: Path) -> list[str]:
    """Apply pending migrations; return the names applied. Safe to run concurrently."""
    check_schema(schema)
    files = discover(migrations_dir)
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        lock_key = int.from_bytes(
            hashlib.sha256(f"omnirouter:{schema}".encode()).digest()[:8], "big", signed=True
        )
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(_BASE.format(schema=schema))
            rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.schema_migrations")  # noqa: S608 - schema passed check_schema()
            done = {r["version"]: r["checksum"] for r in rows}
            for version, name, sql in files:
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if version in done:
                    if done[version] != checksum:
                        raise MigrationError(
                            f"{schema}/{name} changed after it was applied; add a new migration"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL search_path = {schema}, public")
                    await conn.execute(sql)
                    await conn.execute(
                        f"INSERT INTO {schema}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",  # noqa: S608 - schema passed check_schema(); values are parameters
                        version,
                        name,
                        checksum,
                    )
                applied_now.append(name)
                log.info("applied migration", extra={"schema": schema, "migration": name})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()
    return applied_now

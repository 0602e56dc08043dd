"""The transactional outbox: events are written with the effects they announce and published after the
commit; rows left by a crash are published by the next batch that touches the same source or by the
sweeper. Event ids are deterministic, so a second publication is deduplicated downstream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from omnirouter_shared.contracts.envelope import Envelope, encode_envelope
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.topics import Topic


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    topic: Topic
    key: str
    #: None = a tombstone (erasure on a compacted topic).
    envelope: Envelope | None


async def stage(conn: asyncpg.Connection, rows: Sequence[tuple[str, OutboxEvent]]) -> None:
    """Stage (source id, event) pairs in one statement, keeping their order (per-customer order)."""
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO outbox (source_id, topic, key, value)
        SELECT s, t, k, v
        FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY AS x(s, t, k, v, n)
        ORDER BY n
        """,
        [s for s, _ in rows],
        [e.topic.value for _, e in rows],
        [e.key for _, e in rows],
        [encode_envelope(e.envelope) if e.envelope is not None else None for _, e in rows],
    )


async def publish(pool: asyncpg.Pool, producer: EventProducer, source_ids: Sequence[str]) -> int:
    """Publish (in staging order) and delete the rows of ``source_ids``; raises BrokerUnavailable."""
    if not source_ids:
        return 0
    rows = await pool.fetch(
        "SELECT id, topic, key, value FROM outbox WHERE source_id = ANY($1::text[]) ORDER BY id",
        list(dict.fromkeys(source_ids)),
    )
    return await _send(pool, producer, rows)


async def sweep(
    pool: asyncpg.Pool, producer: EventProducer, *, older_than_s: float = 5.0, limit: int = 500
) -> int:
    """Publish rows a crashed instance (or a failed publish) left behind."""
    rows = await pool.fetch(
        """
        SELECT id, topic, key, value FROM outbox
        WHERE created_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2
        """,
        older_than_s,
        limit,
    )
    return await _send(pool, producer, rows)


async def _send(pool: asyncpg.Pool, producer: EventProducer, rows: Sequence[asyncpg.Record]) -> int:
    if not rows:
        return 0
    await producer.send_raw_many([(r["topic"], r["key"], r["value"], None) for r in rows])
    await pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
    return len(rows)

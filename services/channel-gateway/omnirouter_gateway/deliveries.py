"""The deliveries table and its outbox: how replies are taken in, claimed by workers, finished, and how
their status events and dead-letter records leave for Kafka.

A worker claims a due row under a lease (``FOR UPDATE SKIP LOCKED`` in a short transaction, so replicas
share the work without waiting on each other), calls the vendor holding no database connection, and
records the outcome only if it still holds the claim. A worker that dies leaves a lease that expires:
the reply is attempted again, never lost."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from omnirouter_shared.contracts.replies import ReplyRequested
from omnirouter_shared.kafka.producer import EventProducer

PENDING = "pending"


@dataclass(frozen=True, slots=True)
class NewDelivery:
    reply: ReplyRequested
    event_id: str
    correlation_id: str
    routing_domain: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_key: bytes | None
    source_value: bytes | None


@dataclass(frozen=True, slots=True)
class Claimed:
    reply_id: str
    token: uuid.UUID
    #: Including the attempt this claim is for.
    attempts: int
    reply: ReplyRequested
    event_id: str | None
    correlation_id: str | None
    routing_domain: str | None
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    source_key: bytes | None
    source_value: bytes | None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


async def insert(conn: asyncpg.Connection, rows: Sequence[NewDelivery]) -> int:
    """Take replies in, in the order given (the partition's); a reply id seen before is ignored, so a
    redelivered reply is never sent twice. Returns how many were new."""
    if not rows:
        return 0
    status = await conn.execute(
        """
        INSERT INTO deliveries (
            reply_id, channel, state, customer_id, reply, vendor, next_attempt_at, event_id,
            correlation_id, routing_domain, source_topic, source_partition, source_offset, source_key,
            source_value)
        SELECT r, ch, 'pending', c, p::jsonb, v, now(), e, co, d, st, sp, so, sk, sv
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::text[], $9::text[], $10::int[], $11::bigint[], $12::bytea[], $13::bytea[])
             WITH ORDINALITY AS x(r, ch, c, p, v, e, co, d, st, sp, so, sk, sv, n)
        ORDER BY n
        ON CONFLICT (reply_id) DO NOTHING
        """,
        [d.reply.reply_id for d in rows],
        [d.reply.channel.value for d in rows],
        [d.reply.customer_id for d in rows],
        [orjson.dumps(d.reply.model_dump(mode="json")).decode() for d in rows],
        [d.reply.vendor.value if d.reply.vendor else None for d in rows],
        [d.event_id for d in rows],
        [d.correlation_id for d in rows],
        [d.routing_domain for d in rows],
        [d.source_topic for d in rows],
        [d.source_partition for d in rows],
        [d.source_offset for d in rows],
        [d.source_key for d in rows],
        [d.source_value for d in rows],
    )
    return int(status.split()[-1])


async def claim(pool: asyncpg.Pool, lease_s: float) -> Claimed | None:
    """The oldest due delivery whose customer has no older pending one, claimed for ``lease_s``."""
    token = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """
            WITH due AS (
                SELECT d.reply_id FROM deliveries d
                WHERE d.state = 'pending' AND d.next_attempt_at <= now()
                  AND (d.locked_until IS NULL OR d.locked_until <= now())
                  AND NOT EXISTS (
                      SELECT 1 FROM deliveries o
                      WHERE o.customer_id = d.customer_id AND o.state = 'pending' AND o.seq < d.seq)
                ORDER BY d.next_attempt_at, d.seq
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE deliveries d
               SET locked_until = now() + make_interval(secs => $1), claim_token = $2,
                   attempts = d.attempts + 1, updated_at = now()
              FROM due WHERE d.reply_id = due.reply_id
            RETURNING d.reply_id, d.attempts, d.reply, d.event_id, d.correlation_id, d.routing_domain,
                      d.source_topic, d.source_partition, d.source_offset, d.source_key, d.source_value
            """,
            lease_s,
            token,
        )
    if row is None:
        return None
    reply = ReplyRequested.model_validate(orjson.loads(row["reply"]))
    return Claimed(
        reply_id=row["reply_id"],
        token=token,
        attempts=row["attempts"],
        reply=reply,
        event_id=row["event_id"],
        correlation_id=row["correlation_id"],
        routing_domain=row["routing_domain"],
        source_topic=row["source_topic"],
        source_partition=row["source_partition"],
        source_offset=row["source_offset"],
        source_key=row["source_key"],
        source_value=row["source_value"],
    )


async def opted_out(pool: asyncpg.Pool, address_key: str, channel: str) -> bool:
    return bool(
        await pool.fetchval(
            """
            SELECT EXISTS (SELECT 1 FROM opt_outs
                           WHERE address_key = $1 AND channel IN ($2, '*') AND opted_out)
            """,
            address_key,
            channel,
        )
    )


async def retry_later(pool: asyncpg.Pool, claimed: Claimed, delay_s: float, error: str) -> bool:
    """Give the claim back with the next attempt ``delay_s`` from now; False if the claim was lost."""
    status = await pool.execute(
        """
        UPDATE deliveries
           SET next_attempt_at = now() + make_interval(secs => $3), locked_until = NULL,
               claim_token = NULL, error = $4, updated_at = now()
         WHERE reply_id = $1 AND claim_token = $2 AND state = 'pending'
        """,
        claimed.reply_id,
        claimed.token,
        delay_s,
        error,
    )
    return str(status).endswith(" 1")


async def finish(
    pool: asyncpg.Pool,
    claimed: Claimed,
    state: str,
    *,
    vendor: str | None,
    vendor_message_id: str | None,
    error: str | None,
    records: Sequence[OutboxRecord],
) -> bool:
    """Record the final state and stage its outbox records in one transaction; False (nothing written)
    if this worker no longer holds the claim."""
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.execute(
            """
            UPDATE deliveries
               SET state = $3, vendor = COALESCE($4, vendor), vendor_message_id = $5, error = $6,
                   locked_until = NULL, claim_token = NULL, updated_at = now()
             WHERE reply_id = $1 AND claim_token = $2 AND state = 'pending'
            """,
            claimed.reply_id,
            claimed.token,
            state,
            vendor,
            vendor_message_id,
            error,
        )
        if not status.endswith(" 1"):
            return False
        await conn.executemany(
            "INSERT INTO delivery_outbox (reply_id, topic, key, value, headers) VALUES ($1, $2, $3, $4, $5::jsonb)",
            [
                (claimed.reply_id, r.topic, r.key, r.value, orjson.dumps(_headers_json(r.headers)).decode())
                for r in records
            ],
        )
    return True


def _headers_json(headers: Sequence[tuple[str, bytes]]) -> list[list[str]]:
    return [[k, v.decode("utf-8", "replace")] for k, v in headers]


async def publish_outbox(
    pool: asyncpg.Pool,
    producer: EventProducer,
    *,
    reply_id: str | None = None,
    older_than_s: float = 0.0,
    limit: int = 500,
) -> int:
    """Publish staged records (those of ``reply_id``, or any older than ``older_than_s``) and delete
    them. The rows stay locked while the broker acknowledges, so the sweeper and the worker that staged
    them never publish the same row twice; a crash between ack and commit republishes the same event
    id, which consumers deduplicate. Raises BrokerUnavailable (rows stay for the sweeper)."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """
            SELECT id, topic, key, value, headers FROM delivery_outbox
            WHERE ($1::text IS NULL OR reply_id = $1)
              AND created_at <= now() - make_interval(secs => $2)
            ORDER BY id LIMIT $3
            FOR UPDATE SKIP LOCKED
            """,
            reply_id,
            older_than_s,
            limit,
        )
        if not rows:
            return 0
        await producer.send_raw_many(
            [(r["topic"], r["key"], r["value"], _headers(r["headers"])) for r in rows]
        )
        await conn.execute(
            "DELETE FROM delivery_outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
        )
    return len(rows)


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    items = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return [(str(k), str(v).encode()) for k, v in items or ()]

"""Thin Kafka adapters: decode (done by the consumer loop), claim the event ids and apply the effects in
one transaction, then publish the staged events and let the loop commit the offsets.

Order of durability: DB commit (effects + claims + outbox) -> broker acks -> offset commit. A crash
between any two replays the batch; the claims make the effects exactly-once and the outbox re-publishes
what was not acknowledged, with the same event ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
from pydantic import BaseModel

from omnirouter_identity import metrics
from omnirouter_identity.intake import Effects, handle_feed_many, handle_received, handle_status
from omnirouter_identity.resolution import Resolver
from omnirouter_identity.store import outbox
from omnirouter_identity.store.tx import serializable
from omnirouter_shared.contracts.envelope import Envelope
from omnirouter_shared.contracts.interactions import InteractionReceived, InteractionStatusChanged
from omnirouter_shared.db import claim_events
from omnirouter_shared.kafka.consumer import Consumed, Rejection
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.observability.logging import correlation_scope, get_logger
from omnirouter_shared.topics import Topic

log = get_logger(__name__)

INBOUND_GROUP = "identity-resolution"
INBOUND_TOPICS = (Topic.INTERACTIONS_INBOUND,)
TIMELINE_GROUP = "identity-resolution-timeline"
TIMELINE_TOPICS = (Topic.ROUTING_DECISIONS, Topic.REPLIES_OUTBOUND, Topic.REPLIES_STATUS)


def _split(batch: Sequence[Consumed]) -> tuple[list[tuple[Consumed, BaseModel]], list[str]]:
    items = [(c, c.payload) for c in batch if c.envelope is not None and c.payload is not None]
    return items, list(dict.fromkeys(c.envelope.event_id for c, _ in items if c.envelope is not None))


def writer_lock() -> asyncio.Lock:
    """One per process, shared by the two consumers' handlers: their SERIALIZABLE transactions run one
    at a time. Run concurrently, they conflicted on the timeline and processed_events index pages (a
    batch's predicate locks escalate to pages), PostgreSQL cancelled the inbound batch as the pivot,
    and the whole batch was retried, up to giving up and backing off for seconds. Conflicts with other
    replicas remain possible and are still retried by ``serializable``."""
    return asyncio.Lock()


class InboundHandler:
    """omni.interactions.inbound -> resolved interactions, merges and consent changes."""

    consumer_name = "identity-resolution:inbound"

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: EventProducer,
        resolver: Resolver,
        *,
        writer: asyncio.Lock | None = None,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._resolver = resolver
        self._writer = writer or asyncio.Lock()

    async def __call__(self, batch: Sequence[Consumed]) -> Sequence[Rejection]:
        items, ids = _split(batch)
        rejections = [
            Rejection(c, f"identity-resolution does not handle {c.envelope.type if c.envelope else '?'} here")
            for c, p in items
            if not isinstance(p, InteractionReceived | InteractionStatusChanged)
        ]

        async def work(conn: asyncpg.Connection) -> Effects:
            fx = Effects()
            staged: list[tuple[str, outbox.OutboxEvent]] = []
            fresh = await claim_events(conn, self.consumer_name, ids)
            for consumed, payload in items:
                env = consumed.envelope
                assert env is not None
                if env.event_id not in fresh:
                    continue
                fresh.discard(env.event_id)  # the same event twice in one batch: once
                before = len(fx.events)
                with correlation_scope(env.correlation_id):
                    if isinstance(payload, InteractionReceived):
                        await handle_received(conn, self._resolver, payload, env, fx)
                    elif isinstance(payload, InteractionStatusChanged):
                        await handle_status(conn, self._resolver, payload, env, fx)
                staged += [(env.event_id, e) for e in fx.events[before:]]
            await outbox.stage(conn, staged)
            return fx

        with metrics.RESOLVE_LATENCY.time():
            async with self._writer:
                fx = await serializable(self._pool, work)
        for outcome in fx.outcomes:
            self._resolver.after_commit(outcome)
        # Includes rows staged by an earlier attempt that committed but was not acknowledged.
        await outbox.publish(self._pool, self._producer, ids)
        return rejections


class TimelineHandler:
    """Routing decisions, replies and their delivery into the timeline."""

    consumer_name = "identity-resolution:timeline"

    def __init__(self, pool: asyncpg.Pool, *, writer: asyncio.Lock | None = None) -> None:
        self._pool = pool
        self._writer = writer or asyncio.Lock()

    async def __call__(self, batch: Sequence[Consumed]) -> Sequence[Rejection]:
        items, ids = _split(batch)

        async def work(conn: asyncpg.Connection) -> None:
            fresh = await claim_events(conn, self.consumer_name, ids)
            todo: list[tuple[object, Envelope]] = []
            for consumed, payload in items:
                env = consumed.envelope
                assert env is not None
                if env.event_id in fresh:
                    fresh.discard(env.event_id)
                    todo.append((payload, env))
            await handle_feed_many(conn, todo)

        async with self._writer:
            await serializable(self._pool, work)
        return ()

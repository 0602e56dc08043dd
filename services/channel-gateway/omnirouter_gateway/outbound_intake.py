"""The gateway's two consumers: replies to deliver (omni.replies.outbound) and the local copy of consent
(omni.identity.consent). Each applies a batch in one transaction and returns its poison; the
ConsumerLoop commits only afterwards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from omnirouter_gateway import deliveries
from omnirouter_gateway.deliveries import NewDelivery
from omnirouter_gateway.delivery import REPLIES_GROUP, DeliveryWorkers
from omnirouter_gateway.outbound.registry import build_senders, parse_channel_vendors
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.envelope import MalformedEnvelope, decode_envelope
from omnirouter_shared.contracts.identity import ConsentChanged, split_consent_key
from omnirouter_shared.contracts.registry import InvalidPayload, UnknownEventType, parse_payload
from omnirouter_shared.contracts.replies import ReplyRequested
from omnirouter_shared.kafka.consumer import Consumed, ConsumerLoop, Rejection
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.topics import Topic

__all__ = ["CONSENT_GROUP", "REPLIES_GROUP", "ConsentIntake", "Outbound", "ReplyIntake", "build_outbound"]

CONSENT_GROUP = "channel-gateway-consent"
CONSENT_TOPICS = (Topic.IDENTITY_CONSENT,)
CONSENT_FETCH_WAIT_MS = 500
#: A reply reaches the customer within a human's notice; 50 ms of polling is a tenth of the broker cost.
REPLIES_FETCH_WAIT_MS = 50
REPLIES_TOPICS = (Topic.REPLIES_OUTBOUND,)
#: Channels nothing can be sent on: a call is answered live, not by a reply.
UNDELIVERABLE = frozenset({Channel.VOICE})
ALL_CHANNELS = "*"


class ReplyIntake:
    """Stores each reply as a pending delivery (the reply id is the key: a redelivery is a no-op) and
    returns at once; the delivery workers do the slow part."""

    def __init__(self, pool: asyncpg.Pool, on_stored: Callable[[], None] | None = None) -> None:
        self._pool = pool
        self._on_stored = on_stored

    async def __call__(self, batch: Sequence[Consumed]) -> Sequence[Rejection]:
        rejected: list[Rejection] = []
        rows: list[NewDelivery] = []
        for item in batch:
            payload = item.payload
            if not isinstance(payload, ReplyRequested) or item.envelope is None:
                kind = item.envelope.type if item.envelope is not None else "?"
                rejected.append(Rejection(item, f"{kind} is not a reply.requested"))
                continue
            if payload.channel in UNDELIVERABLE:
                rejected.append(Rejection(item, f"no outbound delivery on channel {payload.channel.value}"))
                continue
            env = item.envelope
            rows.append(
                NewDelivery(
                    reply=payload,
                    event_id=env.event_id,
                    correlation_id=env.correlation_id,
                    routing_domain=env.routing_domain,
                    source_topic=item.topic,
                    source_partition=item.partition,
                    source_offset=item.offset,
                    source_key=item.key,
                    source_value=item.value,
                )
            )
        if rows:
            async with self._pool.acquire() as conn, conn.transaction():
                new = await deliveries.insert(conn, rows)
            if new and self._on_stored is not None:
                self._on_stored()
        return rejected


class ConsentIntake:
    """Upserts opt-outs per (address key, channel or '*'); a tombstone (erasure) deletes the address.
    Runs with ``decode=False``: tombstones have no value, and the loop would dead-letter them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def __call__(self, batch: Sequence[Consumed]) -> Sequence[Rejection]:
        rejected: list[Rejection] = []
        ops: list[tuple[str, ConsentChanged | None]] = []
        for item in batch:
            if item.value is None:
                if not item.key:
                    rejected.append(Rejection(item, "consent tombstone without a key"))
                    continue
                ops.append((item.key.decode("utf-8", "replace"), None))
                continue
            try:
                payload = parse_payload(decode_envelope(item.value))
            except (MalformedEnvelope, UnknownEventType, InvalidPayload) as exc:
                rejected.append(Rejection(item, str(exc)))
                continue
            if not isinstance(payload, ConsentChanged):
                rejected.append(Rejection(item, "not a consent.changed event"))
                continue
            ops.append((payload.address.key, payload))
        if ops:
            # In log order, one statement at a time: a tombstone must remove what came before it and
            # nothing that follows it.
            async with self._pool.acquire() as conn, conn.transaction():
                for key, consent in ops:
                    if consent is None:
                        address, channel = split_consent_key(key)
                        if channel is None:
                            await conn.execute("DELETE FROM opt_outs WHERE address_key = $1", address)
                        else:
                            await conn.execute(
                                "DELETE FROM opt_outs WHERE address_key = $1 AND channel = $2",
                                address,
                                channel,
                            )
                    else:
                        await _upsert(conn, key, consent)
        return rejected


async def _upsert(conn: asyncpg.Connection, key: str, consent: ConsentChanged) -> None:
    """Older facts never overwrite newer ones (a replayed or late event); equal times follow log order.
    Opt-ins are kept as rows too, so a late, older opt-out cannot resurrect itself."""
    await conn.execute(
        """
        INSERT INTO opt_outs AS o (address_key, channel, opted_out, reason, changed_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (address_key, channel) DO UPDATE
           SET opted_out = EXCLUDED.opted_out, reason = EXCLUDED.reason, changed_at = EXCLUDED.changed_at
         WHERE o.changed_at <= EXCLUDED.changed_at
        """,
        key,
        consent.channel.value if consent.channel is not None else ALL_CHANNELS,
        consent.opted_out,
        consent.reason,
        consent.changed_at,
    )


@dataclass(frozen=True)
class Outbound:
    consumers: list[ConsumerLoop]
    workers: DeliveryWorkers


def build_outbound(settings: GatewaySettings, pool: asyncpg.Pool, producer: EventProducer) -> Outbound:
    """The consent and reply consumers and the delivery workers, ready to start."""
    workers = DeliveryWorkers(
        pool,
        producer,
        build_senders(settings, pool),
        parse_channel_vendors(settings.channel_vendors),
        service=settings.service_name,
        concurrency=settings.delivery_concurrency,
        attempts=settings.delivery_attempts,
        backoff_s=settings.delivery_backoff_s,
        backoff_max_s=settings.delivery_backoff_max_s,
        timeout_s=settings.delivery_timeout_s,
        poll_s=settings.delivery_poll_s,
    )
    consumers = [
        ConsumerLoop(
            settings,
            topics=list(CONSENT_TOPICS),
            group_id=CONSENT_GROUP,
            handler=ConsentIntake(pool),
            producer=producer,
            decode=False,
            # Opt-outs may take a moment to apply; polling Tansu every 5 ms costs broker CPU that the
            # path to the agents needs (docs/performance.md).
            fetch_max_wait_ms=CONSENT_FETCH_WAIT_MS,
        ),
        ConsumerLoop(
            settings,
            topics=list(REPLIES_TOPICS),
            group_id=REPLIES_GROUP,
            handler=ReplyIntake(pool, on_stored=workers.wake),
            producer=producer,
            fetch_max_wait_ms=REPLIES_FETCH_WAIT_MS,
        ),
    ]
    return Outbound(consumers, workers)

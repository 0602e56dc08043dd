"""From verified, parsed webhook to events durably in Kafka: claim, publish (acks=all), mark.

The caller answers the vendor 2xx only after ``accept`` returned; ``BrokerUnavailable`` (or an
in-flight duplicate that did not finish in time) becomes a 503 so the vendor retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from omnirouter_gateway import metrics
from omnirouter_gateway.dedup import Claim, DedupStore, Key
from omnirouter_gateway.inbound.base import InboundEvent
from omnirouter_shared.contracts.envelope import new_envelope
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.observability.logging import get_logger
from omnirouter_shared.topics import Topic

log = get_logger(__name__)

_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, RuntimeError)


class StillInFlight(RuntimeError):
    """Another replica is publishing the same vendor message and has not finished: retry later."""


@dataclass(frozen=True)
class Accepted:
    published: int
    duplicates: int


class Intake:
    def __init__(
        self,
        producer: EventProducer,
        dedup: DedupStore,
        *,
        service: str,
        inflight_wait_s: float,
    ) -> None:
        self._producer = producer
        self._dedup = dedup
        self._service = service
        self._inflight_wait_s = inflight_wait_s
        self._marking: set[asyncio.Task[None]] = set()

    async def accept(self, endpoint: str, events: Sequence[InboundEvent]) -> Accepted:
        if not events:
            return Accepted(0, 0)
        keys = [Key(e.payload.vendor.value, e.dedup_key, e.event_id) for e in events]
        try:
            claims = await self._dedup.claim(keys)
        except _DB_ERRORS as exc:
            # Publish anyway: ids are deterministic and every consumer deduplicates on them.
            log.warning("dedup store unavailable; publishing without it", extra={"error": str(exc)})
            claims = None
        if claims is None:
            todo = list(events)
            duplicates = 0
        else:
            todo, duplicates = await self._settle(events, keys, claims)
        mine = [Key(e.payload.vendor.value, e.dedup_key, e.event_id) for e in todo]
        try:
            await self._producer.publish_many(
                [
                    (
                        Topic.INTERACTIONS_INBOUND,
                        e.kafka_key,
                        new_envelope(
                            e.payload,
                            producer=self._service,
                            event_id=e.event_id,
                            correlation_id=e.event_id,
                        ),
                    )
                    for e in todo
                ]
            )
        except BaseException:
            if claims is not None and mine:
                try:
                    await self._dedup.release(mine)
                except _DB_ERRORS as exc:
                    # The lease expires on its own; the vendor's retry then takes the claim over.
                    log.warning("could not release claims", extra={"error": str(exc)})
            raise
        if claims is not None and mine:
            # The vendor is answered without waiting for the mark: the events are durable in Kafka, and
            # a redelivery that arrives before the mark finds the claim in flight and waits for it.
            task = asyncio.get_running_loop().create_task(self._mark(mine))
            self._marking.add(task)
            task.add_done_callback(self._marking.discard)
        metrics.EVENTS.labels(endpoint, "published").inc(len(todo))
        metrics.EVENTS.labels(endpoint, "duplicate").inc(duplicates)
        return Accepted(len(todo), duplicates)

    async def _mark(self, keys: Sequence[Key]) -> None:
        try:
            await self._dedup.mark_published(keys)
        except _DB_ERRORS as exc:
            # Already durable in Kafka. A redelivery after the lease republishes the same event id,
            # which consumers drop.
            log.warning("could not mark published", extra={"error": str(exc)})

    async def _settle(
        self, events: Sequence[InboundEvent], keys: Sequence[Key], claims: Sequence[Claim]
    ) -> tuple[list[InboundEvent], int]:
        todo = [e for e, c in zip(events, claims, strict=True) if c is Claim.NEW]
        duplicates = sum(1 for c in claims if c is Claim.DUPLICATE)
        waiting = [(e, k) for e, k, c in zip(events, keys, claims, strict=True) if c is Claim.INFLIGHT]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._inflight_wait_s
        while waiting:
            if loop.time() >= deadline:
                raise StillInFlight(f"{len(waiting)} message(s) are being published by another request")
            await asyncio.sleep(0.05)
            state = await self._dedup.published([k for _, k in waiting])
            still = []
            retry = []
            for e, k in waiting:
                if state[k] is True:
                    duplicates += 1
                elif state[k] is None:
                    retry.append((e, k))  # the other request gave up: claim it ourselves
                else:
                    still.append((e, k))
            if retry:
                again = await self._dedup.claim([k for _, k in retry])
                for (e, k), c in zip(retry, again, strict=True):
                    if c is Claim.NEW:
                        todo.append(e)
                    elif c is Claim.DUPLICATE:
                        duplicates += 1
                    else:
                        still.append((e, k))
            waiting = still
        return todo, duplicates

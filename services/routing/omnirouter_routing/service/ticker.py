"""Routing's clock: a ``RoutingTick`` written into each owned inbox partition every ``interval``.

Time-outs (offers, wrap-up, escalation steps) then fire when the tick is *consumed*, in log order, so a
replay after a crash sees exactly the same times. Two replicas ticking the same partition for a moment
during a rebalance is harmless: a tick only moves time forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from omnirouter_routing import metrics
from omnirouter_shared.contracts.envelope import encode_envelope, new_envelope
from omnirouter_shared.contracts.routing import RoutingTick
from omnirouter_shared.kafka.producer import BrokerUnavailable, EventProducer
from omnirouter_shared.observability.logging import get_logger
from omnirouter_shared.topics import Topic

log = get_logger(__name__)

#: A tick concerns every routing domain of its partition.
TICK_DOMAIN = "*"


def tick_envelope_bytes(now: datetime, producer: str) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    env = new_envelope(
        RoutingTick(now=now),
        producer=producer,
        event_id=event_id,
        occurred_at=now,
        routing_domain=TICK_DOMAIN,
    )
    return event_id, encode_envelope(env)


class Tickers:
    """One ticking task per owned partition, started on assignment and stopped on revocation."""

    def __init__(
        self,
        producer: EventProducer,
        interval_s: float,
        *,
        wanted: Callable[[int], bool],
        producer_name: str = "routing",
    ) -> None:
        self._producer = producer
        self._interval = interval_s
        self._wanted = wanted
        self._name = producer_name
        self._tasks: dict[int, asyncio.Task[None]] = {}

    @property
    def partitions(self) -> set[int]:
        return set(self._tasks)

    def start(self, partition: int) -> None:
        if partition not in self._tasks:
            self._tasks[partition] = asyncio.create_task(
                self._run(partition), name=f"routing-tick:{partition}"
            )

    async def stop(self, partitions: set[int] | None = None) -> None:
        chosen = set(self._tasks) if partitions is None else partitions & set(self._tasks)
        tasks = [self._tasks.pop(p) for p in chosen]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, partition: int) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self._interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += self._interval
            if loop.time() > next_at:  # fell behind (a stall): do not burst to catch up
                next_at = loop.time() + self._interval
            if not self._wanted(partition):
                continue
            _, value = tick_envelope_bytes(datetime.now(UTC), self._name)
            try:
                await self._producer.send_to_partition(
                    Topic.ROUTING_INBOX, partition, f"tick:{partition}", value
                )
                metrics.TICKS.labels("sent").inc()
            except BrokerUnavailable as exc:
                metrics.TICKS.labels("failed").inc()
                log.warning(
                    "could not write a routing tick", extra={"partition": partition, "error": str(exc)}
                )

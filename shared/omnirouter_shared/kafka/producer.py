"""One long-lived producer per process; every publish waits for the broker's acknowledgement."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from omnirouter_shared.contracts.envelope import Envelope, encode_envelope
from omnirouter_shared.observability import metrics
from omnirouter_shared.observability.logging import get_logger
from omnirouter_shared.settings import ServiceSettings
from omnirouter_shared.topics import Topic

log = get_logger(__name__)

Headers = Sequence[tuple[str, bytes]]


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge in time: the caller must not confirm the work to anyone."""


class EventProducer:
    def __init__(
        self, settings: ServiceSettings, *, client_id: str | None = None, linger_ms: int = 0
    ) -> None:
        self._settings = settings
        self._client_id = client_id or f"{settings.service_name}-{settings.instance_id}"
        self._linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._timeout_s = settings.kafka_request_timeout_ms / 1000
        self._last_health: tuple[float, bool] = (0.0, False)

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            client_id=self._client_id,
            # acks=all: a webhook is confirmed only once every in-sync replica has the event. The
            # idempotent producer is off because Tansu lacks InitProducerId; consumers dedup by event id.
            acks="all",
            enable_idempotence=False,
            linger_ms=self._linger_ms,
            request_timeout_ms=self._settings.kafka_request_timeout_ms,
            max_batch_size=1024 * 1024,
            max_request_size=4 * 1024 * 1024,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    @property
    def started(self) -> bool:
        return self._producer is not None

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise BrokerUnavailable("producer is not started")
        return self._producer

    def topic_name(self, topic: Topic | str) -> str:
        return self._settings.topic(topic)

    async def publish(
        self, topic: Topic | str, key: str | bytes | None, envelope: Envelope, headers: Headers | None = None
    ) -> None:
        await self.send_raw(topic, key, encode_envelope(envelope), headers)

    async def publish_many(self, items: Sequence[tuple[Topic | str, str | bytes | None, Envelope]]) -> None:
        """Pipeline many events and wait for all acks; raises if any one of them was not acknowledged."""
        await self.send_raw_many([(t, k, encode_envelope(e), None) for t, k, e in items])

    async def send_raw(
        self, topic: Topic | str, key: str | bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        await self.send_raw_many([(topic, key, value, headers)])

    async def send_raw_many(
        self, items: Sequence[tuple[Topic | str, str | bytes | None, bytes | None, Headers | None]]
    ) -> None:
        if not items:
            return
        producer = self._require()
        started = time.perf_counter()
        names = [self._settings.topic(t) for t, _, _, _ in items]
        try:
            futures = []
            for name, (_, key, value, headers) in zip(names, items, strict=True):
                k = key.encode() if isinstance(key, str) else key
                futures.append(await producer.send(name, value=value, key=k, headers=list(headers or ())))
            await asyncio.wait_for(asyncio.gather(*futures), timeout=self._timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            for name in set(names):
                metrics.PRODUCE_FAILURES.labels(name).inc()
            raise BrokerUnavailable(f"broker did not acknowledge: {type(exc).__name__}: {exc}") from exc
        elapsed = time.perf_counter() - started
        for name in names:
            metrics.EVENTS_PRODUCED.labels(name).inc()
        metrics.PRODUCE_LATENCY.labels(names[0]).observe(elapsed)

    async def send_to_partition(
        self,
        topic: Topic | str,
        partition: int,
        key: str | bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
    ) -> None:
        """Produce to an explicit partition (e.g. routing's clock ticks into the partition it owns)."""
        producer = self._require()
        name = self._settings.topic(topic)
        k = key.encode() if isinstance(key, str) else key
        try:
            fut = await producer.send(
                name, value=value, key=k, partition=partition, headers=list(headers or ())
            )
            await asyncio.wait_for(fut, timeout=self._timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            metrics.PRODUCE_FAILURES.labels(name).inc()
            raise BrokerUnavailable(f"broker did not acknowledge: {type(exc).__name__}: {exc}") from exc
        metrics.EVENTS_PRODUCED.labels(name).inc()

    async def healthy(self) -> bool:
        """True when the broker answered a metadata request recently (cached for a second)."""
        if self._producer is None:
            return False
        now = time.monotonic()
        checked_at, ok = self._last_health
        if now - checked_at < 1.0:
            return ok
        try:
            ok = bool(await asyncio.wait_for(self._producer.client.force_metadata_update(), timeout=2.0))
        except (KafkaError, TimeoutError, OSError):
            ok = False
        self._last_health = (now, ok)
        return ok

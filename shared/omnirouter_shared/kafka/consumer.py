"""The consume loop every service uses: at-least-once, commit after effects, poison to dead-letter.

Contract with the handler:
- it receives a batch of decoded events (undecodable ones never reach it: they are dead-lettered);
- it returns the events it rejects as poison, with a reason, and they are dead-lettered;
- any exception it raises is transient: the loop backs off and hands it the same batch again, so the
  handler must be idempotent (claim event ids in the same transaction as its effects);
- offsets are committed only after it returned and the dead-letter sends were acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from omnirouter_shared.contracts.envelope import Envelope, MalformedEnvelope, decode_envelope
from omnirouter_shared.contracts.registry import InvalidPayload, UnknownEventType, parse_payload
from omnirouter_shared.kafka.dead_letter import dead_letter_record
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.observability import metrics
from omnirouter_shared.observability.logging import get_logger
from omnirouter_shared.settings import ServiceSettings
from omnirouter_shared.topics import Topic

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int
    envelope: Envelope | None = None
    payload: BaseModel | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    consumed: Consumed
    reason: str


BatchHandler = Callable[[Sequence[Consumed]], Awaitable[Sequence[Rejection]]]


@dataclass
class _Stats:
    last_tick: float = field(default_factory=time.monotonic)
    failing_since: float | None = None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Wait for the batch in flight to finish and commit, so the next owner does not redo it.
        async with self._loop._processing:
            if self._loop.on_revoked is not None:
                await self._loop.on_revoked(revoked)
        metrics.CONSUMER_ASSIGNED.labels(self._loop.group_id).set(0)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self._loop.on_assigned is not None:
            # A stateful consumer restores its state here and may rewind to where that state ends.
            seeks = await self._loop.on_assigned(assigned)
            consumer = self._loop._consumer
            if seeks and consumer is not None:
                for tp, offset in seeks.items():
                    consumer.seek(tp, offset)
        self._loop._assigned_once = True
        metrics.CONSUMER_ASSIGNED.labels(self._loop.group_id).set(len(assigned))


class ConsumerLoop:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        topics: Sequence[Topic | str],
        group_id: str,
        handler: BatchHandler,
        producer: EventProducer,
        max_batch: int = 500,
        auto_offset_reset: str = "earliest",
        decode: bool = True,
        on_assigned: Callable[[set[TopicPartition]], Awaitable[dict[TopicPartition, int] | None]]
        | None = None,
        on_revoked: Callable[[set[TopicPartition]], Awaitable[None]] | None = None,
        fetch_max_wait_ms: int | None = None,
    ) -> None:
        self.group_id = group_id
        self._settings = settings
        self._topics = [settings.topic(t) for t in topics]
        self._handler = handler
        self._producer = producer
        self._max_batch = max_batch
        self._auto_offset_reset = auto_offset_reset
        self._decode = decode
        # Tansu answers an empty fetch when fetch_max_wait_ms is up, not when data arrives, so the wait is
        # both a floor on latency and a poll rate: 5 ms (the default) costs the broker and the client
        # about 7 % of a core each per idle consumer. Consumers off the contact's path pass a longer one.
        self._fetch_max_wait_ms = (
            settings.kafka_fetch_max_wait_ms if fetch_max_wait_ms is None else fetch_max_wait_ms
        )
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._processing = asyncio.Lock()
        self._assigned_once = False
        self._joined = False
        self._stats = _Stats()
        #: Partitions the handler of the batch in flight asked not to commit (and where to seek them).
        self._held: dict[TopicPartition, int | None] = {}

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe and return at once; the group join (and the first batch) follow in the background.

        aiokafka's own ``start`` waits for the first assignment, and after a crash the group keeps the
        dead member until its session times out: awaiting it here held every service's start-up (HTTP
        port closed, webhooks refused) for a session time-out per consumer. ``assigned`` (readiness)
        turns true once the group answered."""
        self._consumer = self._new_consumer()
        self._task = asyncio.create_task(self._join_and_run(), name=f"consumer:{self.group_id}")

    async def _join_and_run(self) -> None:
        while True:
            assert self._consumer is not None
            try:
                await self._consumer.start()
                break
            except KafkaError as exc:
                log.warning(
                    "joining the consumer group failed; retrying",
                    extra={"group": self.group_id, "error": str(exc)},
                )
                with contextlib.suppress(Exception):
                    await self._consumer.stop()
                self._consumer = self._new_consumer()
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=1.0)
                    return
                except TimeoutError:
                    pass
        self._joined = True
        await self._run()

    def _new_consumer(self) -> AIOKafkaConsumer:
        s = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=self.group_id,
            client_id=f"{s.service_name}-{s.instance_id}",
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
            session_timeout_ms=s.kafka_session_timeout_ms,
            heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
            rebalance_timeout_ms=s.kafka_rebalance_timeout_ms,
            request_timeout_ms=max(s.kafka_request_timeout_ms, s.kafka_session_timeout_ms + 5000),
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            max_poll_records=self._max_batch,
            max_poll_interval_ms=300_000,
        )
        consumer.subscribe(self._topics, listener=_Listener(self))
        return consumer

    async def stop(self) -> None:
        """Stop fetching, finish the batch in flight, commit, leave the group."""
        self._stopping.set()
        if self._task is not None and not self._joined:
            # Still joining: there is no batch in flight to finish.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        elif self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self._settings.shutdown_timeout_s)
            except TimeoutError:
                log.error(
                    "consumer did not finish in time; abandoning the batch in flight",
                    extra={"group": self.group_id},
                )
                self._task.cancel()
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    # -- health ----------------------------------------------------------------------------------------
    @property
    def assigned(self) -> bool:
        """True once the group gave this member its partitions (even zero of them, with more members
        than partitions: an idle standby is still ready)."""
        return self._assigned_once and self._consumer is not None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def healthy(self) -> bool:
        return self.alive and self._stats.failing_since is None

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp`` (None if nothing was committed yet)."""
        if self._consumer is None:
            return None
        result = await self._consumer.committed(tp)
        return int(result) if result is not None else None

    def hold(self, tp: TopicPartition, seek_to: int | None = None) -> None:
        """Called by the handler during a batch: do not commit ``tp``'s records of this batch, and
        seek it to ``seek_to`` (when given) so they are fetched again. A stateful handler uses it for
        records fetched before its state was restored, which it must neither apply nor acknowledge."""
        self._held[tp] = seek_to

    async def beginning_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        assert self._consumer is not None
        result: dict[TopicPartition, int] = await self._consumer.beginning_offsets(list(tps))
        return result

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        if self._consumer is None:
            return {}
        return {tp: int(o) for tp, o in (await self._consumer.end_offsets(list(tps))).items()}

    def seconds_since_tick(self) -> float:
        return time.monotonic() - self._stats.last_tick

    # -- loop ------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not self._stopping.is_set():
            self._stats.last_tick = time.monotonic()
            try:
                records = await consumer.getmany(timeout_ms=200, max_records=self._max_batch)
            except KafkaError as exc:
                log.warning("fetch failed, retrying", extra={"group": self.group_id, "error": str(exc)})
                await asyncio.sleep(0.5)
                continue
            if not records:
                continue
            async with self._processing:
                await self._process(consumer, records)
            self._update_lag(consumer, records)

    async def _process(self, consumer: AIOKafkaConsumer, records: dict[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        started = time.perf_counter()
        batch: list[Consumed] = []
        poison: list[Rejection] = []
        for tp, msgs in records.items():
            for m in msgs:
                item = Consumed(
                    tp.topic, tp.partition, m.offset, m.key, m.value, tuple(m.headers or ()), m.timestamp
                )
                if not self._decode:
                    batch.append(item)
                    continue
                try:
                    env = decode_envelope(m.value)
                    payload = parse_payload(env)
                except (MalformedEnvelope, UnknownEventType, InvalidPayload) as exc:
                    poison.append(Rejection(item, str(exc)))
                    continue
                batch.append(
                    Consumed(
                        tp.topic,
                        tp.partition,
                        m.offset,
                        m.key,
                        m.value,
                        tuple(m.headers or ()),
                        m.timestamp,
                        env,
                        payload,
                    )
                )

        backoff = 0.2
        while True:
            self._held = {}
            try:
                rejected = list(await self._handler(batch)) if batch else []
                await self._dead_letter(poison + rejected)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                metrics.HANDLER_FAILURES.labels(self.group_id).inc()
                if self._stats.failing_since is None:
                    self._stats.failing_since = time.monotonic()
                log.exception("batch failed; will retry", extra={"group": self.group_id, "size": len(batch)})
                # Keep retrying even while stopping: dropping the batch would lose it, and the offsets
                # are not committed so a restart redelivers it anyway.
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                    return  # stopping: leave the batch uncommitted for the next owner
                except TimeoutError:
                    backoff = min(backoff * 2, 5.0)
        self._stats.failing_since = None

        offsets = {tp: msgs[-1].offset + 1 for tp, msgs in records.items() if msgs and tp not in self._held}
        for tp, seek_to in self._held.items():
            if seek_to is not None and tp in consumer.assignment():
                consumer.seek(tp, seek_to)
        self._held = {}
        try:
            if offsets:  # every partition of the batch held back: nothing to commit (aiokafka refuses {})
                await consumer.commit(offsets)
        except KafkaError as exc:
            # The group moved on (rebalance): the next owner redelivers; handlers are idempotent.
            log.warning("commit failed", extra={"group": self.group_id, "error": str(exc)})
        for item in batch:
            metrics.EVENTS_CONSUMED.labels(self.group_id, item.topic).inc()
        metrics.BATCH_LATENCY.labels(self.group_id).observe(time.perf_counter() - started)

    async def _dead_letter(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        await self._producer.send_raw_many(
            [dead_letter_record(r.consumed, r.reason, self.group_id) for r in rejections]
        )
        for r in rejections:
            metrics.EVENTS_DEAD_LETTERED.labels(self.group_id, r.consumed.topic).inc()
            log.warning(
                "dead-lettered a poison message",
                extra={
                    "group": self.group_id,
                    "topic": r.consumed.topic,
                    "partition": r.consumed.partition,
                    "offset": r.consumed.offset,
                    "reason": r.reason,
                },
            )

    def _update_lag(self, consumer: AIOKafkaConsumer, records: dict[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        for tp, msgs in records.items():
            high = consumer.highwater(tp)
            if high is not None and msgs:
                metrics.CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(
                    max(0, high - msgs[-1].offset - 1)
                )

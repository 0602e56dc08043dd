"""The inbox processor: one writer per inbox partition, an engine per routing domain inside it.

Per batch (``handle``): apply each new event to its domain's engine, in log order; publish the decisions
to omni.routing.decisions and insert them into the audit table (both before the consume loop commits
the offsets); then, if due, snapshot the partitions to omni.routing.snapshots.

Recovery (``on_assigned``): restore each assigned partition from its newest snapshot and seek the inbox
to the offset that snapshot covers. Events between that offset and the group's committed offset were
already acted on by the previous owner: they are re-applied to rebuild the state but their decisions are
not published again. No broker transactions are needed, and the state after a crash or a fail-over is
exactly the one the log implies: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from pydantic import BaseModel

from omnirouter_routing import metrics
from omnirouter_routing.config import RoutingConfig
from omnirouter_routing.core import RoutingEngine, SnapshotError
from omnirouter_routing.core.decisions import InputEvent
from omnirouter_routing.metrics import DomainStats
from omnirouter_routing.service.audit import AuditWriter
from omnirouter_routing.service.partition import PartitionState
from omnirouter_routing.service.records import Outgoing, outgoing
from omnirouter_routing.service.snapshot_codec import PartitionSnapshot
from omnirouter_routing.service.snapshot_store import SnapshotStore
from omnirouter_routing.service.ticker import Tickers
from omnirouter_routing.settings import RoutingSettings
from omnirouter_shared.contracts.envelope import MalformedEnvelope, decode_envelope
from omnirouter_shared.contracts.registry import InvalidPayload, UnknownEventType, parse_payload
from omnirouter_shared.contracts.routing import RoutingTick
from omnirouter_shared.kafka.consumer import Consumed, ConsumerLoop, Rejection
from omnirouter_shared.kafka.producer import BrokerUnavailable, EventProducer
from omnirouter_shared.observability.logging import correlation_scope, get_logger
from omnirouter_shared.topics import Topic

log = get_logger(__name__)

GROUP = "routing"
_INPUT_TYPES: tuple[type[BaseModel], ...] = tuple(InputEvent.__args__)
_RESTORE_RETRY_S = 2.0


class NotOwned(RuntimeError):
    """An event of a partition this replica holds no state for (it must not be committed by us)."""


def config_digest(config: RoutingConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


class RoutingProcessor:
    def __init__(
        self,
        settings: RoutingSettings,
        config: RoutingConfig,
        producer: EventProducer,
        audit: AuditWriter,
        snapshots: SnapshotStore,
    ) -> None:
        self._settings = settings
        self._config = config
        self._digest = config_digest(config)
        self._producer = producer
        self._audit = audit
        self._snapshots = snapshots
        self._inbox = settings.topic(Topic.ROUTING_INBOX)
        self._parts: dict[int, PartitionState] = {}
        self._lock = asyncio.Lock()
        self._loop: ConsumerLoop | None = None
        self._max_lead = timedelta(seconds=settings.max_clock_lead_s)
        self._restoring = False
        self.tickers = Tickers(
            producer,
            settings.tick_interval_s,
            wanted=self._wants_ticks,
            producer_name=settings.service_name,
        )

    def attach(self, loop: ConsumerLoop) -> None:
        """The consume loop whose committed offsets tell what a previous owner already acted on."""
        self._loop = loop

    # -- introspection ---------------------------------------------------------------------------------
    @property
    def config(self) -> RoutingConfig:
        return self._config

    @property
    def partitions(self) -> list[int]:
        return sorted(self._parts)

    @property
    def restored(self) -> bool:
        """Every owned partition was restored and has re-applied what the previous owner acted on."""
        return not self._restoring and all(p.caught_up for p in self._parts.values())

    def engines(self) -> Iterator[tuple[int, str, RoutingEngine]]:
        for number in sorted(self._parts):
            part = self._parts[number]
            for domain in sorted(part.engines):
                yield number, domain, part.engines[domain]

    def domain_stats(self, now: datetime | None = None) -> list[DomainStats]:
        at = now or datetime.now(UTC)
        return [DomainStats(d, p, e.stats(at)) for p, d, e in self.engines()]

    def _wants_ticks(self, partition: int) -> bool:
        part = self._parts.get(partition)
        return part is not None and bool(part.engines)

    # -- configuration ---------------------------------------------------------------------------------
    async def reconfigure(self, config: RoutingConfig) -> None:
        """Swap the configuration between two batches; every partition is snapshotted after its next
        batch so that a replay after a crash starts from a state taken under the new rules."""
        async with self._lock:
            self._config = config
            self._digest = config_digest(config)
            for part in self._parts.values():
                for engine in part.engines.values():
                    engine.reconfigure(config)
                part.force_snapshot = True

    # -- the batch handler -----------------------------------------------------------------------------
    async def handle(self, batch: Sequence[Consumed]) -> Sequence[Rejection]:
        async with self._lock:
            held: set[int] = set()
            for item in batch:
                if item.partition in held:
                    continue
                part = self._parts.get(item.partition)
                if part is None:
                    # Fetched before this replica restored the partition (or after it lost it): neither
                    # apply nor commit it; the restore seeks the partition to where its state ends.
                    self._hold(item, None, "not owned")
                    held.add(item.partition)
                    continue
                if item.offset < part.next_offset:
                    continue  # applied in an earlier attempt at this batch; its output is pending
                if item.offset > part.next_offset:
                    # Fetched from the committed offset before the restore rewound the partition to its
                    # snapshot: applying it would silently skip the events in between (and their
                    # accepts, completions...). Refetch from where the state ends instead.
                    self._hold(item, part.next_offset, "ahead of the restored state")
                    held.add(item.partition)
                    continue
                if item.envelope is None:
                    decoded = self._decode(part, item)
                    if decoded is None:
                        continue
                    item = decoded
                self._apply(part, item)
            rejections = await self._flush()
            if not rejections:
                await self._snapshot_due()
            return rejections

    def _hold(self, item: Consumed, seek_to: int | None, why: str) -> None:
        if self._loop is None:
            raise NotOwned(f"inbox partition {item.partition} offset {item.offset}: {why}")
        log.info(
            "inbox records held back",
            extra={"partition": item.partition, "offset": item.offset, "seek_to": seek_to, "why": why},
        )
        self._loop.hold(TopicPartition(item.topic, item.partition), seek_to)

    @staticmethod
    def _decode(part: PartitionState, item: Consumed) -> Consumed | None:
        """Decode one inbox record here, in offset order (the loop runs with ``decode=False``): a poison
        record must still move the partition's offset on, or the event after it would look ahead of the
        restored state and the partition would be refetched, and the poison dead-lettered, for ever."""
        try:
            env = decode_envelope(item.value)
            payload = parse_payload(env)
        except (MalformedEnvelope, UnknownEventType, InvalidPayload) as exc:
            part.next_offset = item.offset + 1
            if item.offset >= part.replay_until:  # a replayed one was dead-lettered when it was live
                part.pending_rejections.append(Rejection(item, str(exc)))
            return None
        return dataclasses.replace(item, envelope=env, payload=payload)

    def _apply(self, part: PartitionState, item: Consumed) -> None:
        env, payload = item.envelope, item.payload
        assert env is not None and payload is not None  # the loop decodes before calling us
        live = item.offset >= part.replay_until
        part.next_offset = item.offset + 1
        part.events_since_snapshot += 1
        if not isinstance(payload, _INPUT_TYPES):
            if live:
                part.pending_rejections.append(
                    Rejection(item, f"{env.type} is not an input of routing (omni.routing.inbox)")
                )
            return
        now = part.clock.advance(env, payload, self._max_lead)
        is_tick = isinstance(payload, RoutingTick)
        metrics.EVENTS.labels(env.type, "live" if live else "replay").inc()
        if is_tick:
            targets = [(d, f"{env.event_id}/{d}") for d in sorted(part.engines)]
        else:
            part.changed_since_snapshot = True
            part.engine(env.routing_domain, self._config)
            targets = [(env.routing_domain, env.event_id)]
        with correlation_scope(env.correlation_id):
            for domain, event_id in targets:
                engine = part.engines[domain]
                try:
                    decisions = engine.handle(event_id, payload, now)
                except Exception as exc:
                    # A bug in the core for this event: the engine has already marked the id as seen,
                    # so retrying cannot help. Dead-letter it with the reason and keep the domain going.
                    metrics.ENGINE_ERRORS.labels(env.type).inc()
                    log.exception(
                        "routing core failed on an event",
                        extra={"partition": part.partition, "offset": item.offset, "domain": domain},
                    )
                    if live:
                        part.pending_rejections.append(Rejection(item, f"routing core error: {exc!r}"))
                    continue
                if decisions and is_tick:
                    part.changed_since_snapshot = True
                if live:
                    part.pending.extend(
                        outgoing(
                            d,
                            cause=env,
                            domain=domain,
                            decided_at=now,
                            partition=part.partition,
                            offset=item.offset,
                        )
                        for d in decisions
                    )

    async def _flush(self) -> list[Rejection]:
        """Publish and audit every pending decision; raises (for a retry of the batch) if either fails."""
        out: list[Outgoing] = [o for p in self._parts.values() for o in p.pending]
        if out:
            started = time.perf_counter()
            results = await asyncio.gather(
                self._producer.publish_many([(Topic.ROUTING_DECISIONS, o.key, o.envelope) for o in out]),
                self._audit.write([o.audit for o in out]),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
            for o in out:
                metrics.DECISIONS.labels(o.envelope.type).inc()
        rejections: list[Rejection] = []
        for part in self._parts.values():
            part.pending.clear()
            rejections.extend(part.pending_rejections)
            part.pending_rejections.clear()
        return rejections

    # -- snapshots -------------------------------------------------------------------------------------
    async def _snapshot_due(self) -> None:
        s = self._settings
        due = [
            p
            for p in self._parts.values()
            if p.snapshot_due(s.snapshot_interval_s, s.snapshot_every_events, s.snapshot_idle_interval_s)
        ]
        await self._save(due)

    async def _save(self, parts: Sequence[PartitionState]) -> None:
        if not parts:
            return
        snaps = [p.take_snapshot(self._digest, self._settings.instance_id) for p in parts]
        try:
            await self._snapshots.save(snaps)
        except BrokerUnavailable as exc:
            # Not fatal: the previous snapshot plus a longer replay gives the same state.
            metrics.SNAPSHOTS.labels("failed").inc(len(snaps))
            log.warning("could not save routing snapshots", extra={"error": str(exc)})
            for p in parts:
                p.last_snapshot_at = time.monotonic()
            return
        for part, snap in zip(parts, snaps, strict=True):
            part.mark_saved(snap.offset)

    async def snapshot_all(self) -> None:
        """Save every owned partition now (graceful shutdown: the next owner replays nothing)."""
        async with self._lock:
            await self._save([p for p in self._parts.values() if not p.pending and p.events_since_snapshot])

    # -- group membership ------------------------------------------------------------------------------
    async def on_assigned(self, assigned: set[TopicPartition]) -> dict[TopicPartition, int]:
        mine = sorted(tp.partition for tp in assigned if tp.topic == self._inbox)
        self._restoring = True
        try:
            while True:
                try:
                    seeks = await self._restore(mine)
                    break
                except (OSError, TimeoutError, RuntimeError) as exc:
                    # Without its state this replica must not process the partition: keep trying
                    # (readiness stays false) rather than start from nothing.
                    log.error("restoring routing state failed; retrying", extra={"error": repr(exc)})
                    await asyncio.sleep(_RESTORE_RETRY_S)
        finally:
            self._restoring = False
        for number in mine:
            self.tickers.start(number)
        return seeks

    async def _restore(self, mine: list[int]) -> dict[TopicPartition, int]:
        started = time.perf_counter()
        snaps = await self._snapshots.load_latest(mine)
        tps = [TopicPartition(self._inbox, p) for p in mine]
        ends = await self._loop.end_offsets(tps) if self._loop is not None else {}
        starts = await self._loop.beginning_offsets(tps) if self._loop is not None else {}
        seeks: dict[TopicPartition, int] = {}
        parts: dict[int, PartitionState] = {}
        for tp in tps:
            committed = await self._loop.committed(tp) if self._loop is not None else None
            part = self._restore_one(tp.partition, snaps.get(tp.partition))
            start = starts.get(tp, 0)
            if part.next_offset < start:
                # Retention deleted events the state never saw: start where the log starts, so that
                # every later record is contiguous with the state (a gap means a stale fetch).
                if part.next_offset > 0:
                    log.warning(
                        "inbox retention removed events newer than the routing snapshot",
                        extra={"partition": tp.partition, "snapshot": part.next_offset, "log_start": start},
                    )
                part.next_offset = start
            # Never wait to replay past the end of the log (a recreated topic, a reset group).
            end = ends.get(tp, committed or 0)
            part.replay_until = min(committed or 0, end)
            seeks[tp] = part.next_offset
            parts[tp.partition] = part
            log.info(
                "routing partition assigned",
                extra={
                    "partition": tp.partition,
                    "snapshot_offset": part.next_offset,
                    "committed": committed,
                    "domains": sorted(part.engines),
                },
            )
        async with self._lock:
            self._parts.update(parts)
        metrics.SNAPSHOT_SECONDS.labels("restore").observe(time.perf_counter() - started)
        return seeks

    def _restore_one(self, partition: int, snap: PartitionSnapshot | None) -> PartitionState:
        if snap is not None:
            try:
                part = PartitionState.restore(snap, self._config)
                metrics.SNAPSHOTS.labels("restored").inc()
                return part
            except SnapshotError as exc:
                metrics.SNAPSHOTS.labels("unreadable").inc()
                log.error(
                    "routing snapshot unreadable; rebuilding the partition from the start of the inbox",
                    extra={"partition": partition, "error": str(exc)},
                )
        else:
            metrics.SNAPSHOTS.labels("none").inc()
        # From offset 0: an offset below the log start is reset to the earliest one by the consumer.
        return PartitionState(partition=partition)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        numbers = {tp.partition for tp in revoked if tp.topic == self._inbox}
        await self.tickers.stop(numbers)
        async with self._lock:
            parts = [self._parts[n] for n in sorted(numbers) if n in self._parts]
            try:
                await self._flush()
            except Exception as exc:  # the next owner re-applies and publishes what is pending
                log.warning("could not flush routing decisions on revocation", extra={"error": repr(exc)})
            else:
                await self._save([p for p in parts if p.events_since_snapshot])
            for n in numbers:
                self._parts.pop(n, None)

    async def close(self) -> None:
        await self.tickers.stop()

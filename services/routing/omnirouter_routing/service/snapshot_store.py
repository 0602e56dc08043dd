"""Saving partition snapshots to the compacted omni.routing.snapshots topic and finding the newest one.

A restore reads the whole topic to its end with a group-less consumer (compaction keeps it to about one
record per partition in production) and keeps, per inbox partition, the record covering the highest
inbox offset. Choosing by covered offset rather than by write order means a late snapshot from a replica
that just lost the partition can never hide a newer one; any record is in any case a valid state to
replay forward from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from omnirouter_routing import metrics
from omnirouter_routing.service.snapshot_codec import (
    PartitionSnapshot,
    SnapshotFormatError,
    decode,
    encode,
    header_position,
)
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.observability.logging import get_logger
from omnirouter_shared.settings import ServiceSettings
from omnirouter_shared.topics import Topic

log = get_logger(__name__)

#: Candidates kept per partition while reading: the newest, and one more in case it is unreadable.
_KEEP = 2


class SnapshotStore:
    def __init__(self, settings: ServiceSettings, producer: EventProducer) -> None:
        self._settings = settings
        self._producer = producer
        self._topic = settings.topic(Topic.ROUTING_SNAPSHOTS)

    async def save(self, snapshots: Sequence[PartitionSnapshot]) -> None:
        """Publish and wait for the acks (raises ``BrokerUnavailable``)."""
        if not snapshots:
            return
        started = time.perf_counter()
        items = []
        for snap in snapshots:
            value, headers = encode(snap)
            items.append((Topic.ROUTING_SNAPSHOTS, str(snap.partition), value, headers))
            metrics.SNAPSHOT_BYTES.observe(len(value))
        await self._producer.send_raw_many(items)
        metrics.SNAPSHOTS.labels("saved").inc(len(snapshots))
        metrics.SNAPSHOT_SECONDS.labels("save").observe(time.perf_counter() - started)

    async def load_latest(self, partitions: Iterable[int]) -> dict[int, PartitionSnapshot]:
        """The newest readable snapshot of each of ``partitions`` (absent: none was ever saved)."""
        wanted = set(partitions)
        if not wanted:
            return {}
        started = time.perf_counter()
        candidates = await self._read_candidates(wanted)
        found: dict[int, PartitionSnapshot] = {}
        for partition, records in candidates.items():
            for offset, value in sorted(records, key=lambda r: r[0], reverse=True):
                try:
                    snap = decode(value)
                except SnapshotFormatError as exc:
                    metrics.SNAPSHOTS.labels("unreadable").inc()
                    log.error(
                        "unreadable routing snapshot; trying an older one",
                        extra={"partition": partition, "offset": offset, "error": str(exc)},
                    )
                    continue
                if snap.partition == partition:
                    found[partition] = snap
                    break
        metrics.SNAPSHOT_SECONDS.labels("load").observe(time.perf_counter() - started)
        return found

    async def _read_candidates(self, wanted: set[int]) -> dict[int, list[tuple[int, bytes]]]:
        s = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            client_id=f"{s.service_name}-{s.instance_id}-snapshots",
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=max(s.kafka_request_timeout_ms, 10_000),
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        try:
            await consumer.topics()
            numbers = consumer.partitions_for_topic(self._topic)
            if not numbers:
                raise RuntimeError(f"topic {self._topic} does not exist (run the topic set-up)")
            tps = [TopicPartition(self._topic, p) for p in sorted(numbers)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            remaining = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
            best: dict[int, list[tuple[int, bytes]]] = {}
            deadline = time.monotonic() + max(30.0, s.kafka_request_timeout_ms / 1000 * 6)
            while remaining:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not read {self._topic} to its end in time")
                batch = await consumer.getmany(*remaining, timeout_ms=500)
                for tp, msgs in batch.items():
                    for m in msgs:
                        if m.offset >= ends[tp] or m.value is None:
                            continue
                        self._consider(best, wanted, m.headers or (), m.value)
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
                await asyncio.sleep(0)
            return best
        finally:
            await consumer.stop()

    @staticmethod
    def _consider(
        best: dict[int, list[tuple[int, bytes]]],
        wanted: set[int],
        headers: Sequence[tuple[str, bytes]],
        value: bytes,
    ) -> None:
        try:
            partition, offset = header_position(list(headers))
        except SnapshotFormatError as exc:
            log.warning("ignoring a snapshot record without position headers", extra={"error": str(exc)})
            return
        if partition not in wanted:
            return
        records = best.setdefault(partition, [])
        records.append((offset, value))
        # Later records win ties: the same offset snapshotted twice carries the same state anyway.
        records.sort(key=lambda r: r[0], reverse=True)
        del records[_KEEP:]

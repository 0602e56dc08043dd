"""routing's metrics: the closed set of names this service exports (besides the shared Kafka/HTTP ones).

Queue and agent gauges are computed at scrape time from the engines this replica owns (a collector, not
gauges set from the hot path), so a partition handed to another replica stops being reported here at
once and the numbers are never older than the scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from threading import Lock

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from omnirouter_routing.core import RoutingStats
from omnirouter_shared.observability.metrics import LATENCY_BUCKETS

EVENTS = Counter(
    "omni_routing_events_total",
    "Inbox events applied to the engines; mode=replay for events re-applied after a restore",
    ["type", "mode"],
)
DECISIONS = Counter("omni_routing_decisions_total", "Decisions published and audited", ["type"])
ENGINE_ERRORS = Counter(
    "omni_routing_engine_errors_total", "Inbox events the core failed on (dead-lettered)", ["type"]
)
FLUSH_SECONDS = Histogram(
    "omni_routing_flush_seconds",
    "Time to publish and audit one batch of decisions",
    buckets=LATENCY_BUCKETS,
)
SNAPSHOTS = Counter(
    "omni_routing_snapshots_total",
    "Partition snapshots by outcome (saved, failed, restored, unreadable, none)",
    ["result"],
)
SNAPSHOT_BYTES = Histogram(
    "omni_routing_snapshot_bytes",
    "Size of a compressed partition snapshot",
    buckets=(1e3, 1e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7),
)
SNAPSHOT_SECONDS = Histogram(
    "omni_routing_snapshot_seconds",
    "Time to save snapshots, to read the snapshot topic, and to restore a partition",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
TICKS = Counter(
    "omni_routing_ticks_total", "RoutingTick events written into owned inbox partitions", ["result"]
)
CONFIG_RELOADS = Counter(
    "omni_routing_config_reloads_total", "Configuration reloads by outcome (applied, invalid)", ["result"]
)


@dataclass(frozen=True, slots=True)
class DomainStats:
    domain: str
    partition: int
    stats: RoutingStats


StatsSource = Callable[[], Iterable[DomainStats]]


class QueueCollector(Collector):
    """Per-queue and per-agent-state gauges of every engine owned by the registered processors."""

    def __init__(self) -> None:
        self._sources: dict[int, StatsSource] = {}
        self._lock = Lock()

    def register(self, source: StatsSource) -> int:
        with self._lock:
            handle = id(source)
            self._sources[handle] = source
            return handle

    def unregister(self, handle: int) -> None:
        with self._lock:
            self._sources.pop(handle, None)

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def _families(self) -> list[GaugeMetricFamily]:
        labels = ["domain", "queue"]
        return [
            GaugeMetricFamily("omni_routing_queue_waiting", "Tasks waiting in the queue", labels=labels),
            GaugeMetricFamily("omni_routing_queue_offered", "Tasks offered, not yet accepted", labels=labels),
            GaugeMetricFamily("omni_routing_queue_assigned", "Tasks being worked", labels=labels),
            GaugeMetricFamily(
                "omni_routing_queue_oldest_wait_seconds", "Wait of the longest-waiting task", labels=labels
            ),
            GaugeMetricFamily(
                "omni_routing_queue_service_level",
                "Answered within the threshold / (answered + abandoned)",
                labels=labels,
            ),
            GaugeMetricFamily(
                "omni_routing_queue_average_speed_of_answer_seconds",
                "Mean seconds from arrival to the first accept",
                labels=labels,
            ),
            GaugeMetricFamily(
                "omni_routing_queue_abandonment_rate", "Abandoned / (answered + abandoned)", labels=labels
            ),
            GaugeMetricFamily(
                "omni_routing_agents", "Agents and bots by state", labels=["domain", "kind", "state"]
            ),
        ]

    def collect(self) -> Iterator[Metric]:
        fams = self._families()
        waiting, offered, assigned, oldest, sl, asa, abandon, agents = fams
        with self._lock:
            sources = list(self._sources.values())
        for source in sources:
            for ds in source():
                for q in ds.stats.queues:
                    lv = [ds.domain, q.queue]
                    waiting.add_metric(lv, q.waiting)
                    offered.add_metric(lv, q.offered)
                    assigned.add_metric(lv, q.assigned)
                    oldest.add_metric(lv, q.oldest_wait)
                    # No outcome yet: no sample rather than a misleading 0 or 1.
                    if q.service_level is not None:
                        sl.add_metric(lv, q.service_level)
                    if q.average_speed_of_answer is not None:
                        asa.add_metric(lv, q.average_speed_of_answer)
                    if q.abandonment_rate is not None:
                        abandon.add_metric(lv, q.abandonment_rate)
                for kind, counts in (("human", ds.stats.agents), ("bot", ds.stats.bots)):
                    for state in ("offline", "available", "busy", "away", "wrapup", "working"):
                        agents.add_metric([ds.domain, kind, state], getattr(counts, state))
        yield from fams


QUEUES = QueueCollector()
REGISTRY.register(QUEUES)

"""What routing holds for one owned inbox partition: an engine per routing domain, the partition clock,
how far the log has been applied, and the decisions not yet published."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from omnirouter_routing.config import RoutingConfig
from omnirouter_routing.core import RoutingEngine
from omnirouter_routing.service.clock import PartitionClock
from omnirouter_routing.service.records import Outgoing
from omnirouter_routing.service.snapshot_codec import PartitionSnapshot
from omnirouter_shared.kafka.consumer import Rejection


@dataclass
class PartitionState:
    partition: int
    #: Next inbox offset to apply: everything below is folded into the engines.
    next_offset: int = 0
    #: The group's committed offset when the partition was assigned: events below it were acted on by a
    #: previous owner, so re-applying them must not publish their decisions again.
    replay_until: int = 0
    engines: dict[str, RoutingEngine] = field(default_factory=dict)
    clock: PartitionClock = field(default_factory=PartitionClock)
    #: Decisions applied to the engines but not yet published and audited (kept across a failed flush,
    #: because the engines will not produce them twice).
    pending: list[Outgoing] = field(default_factory=list)
    pending_rejections: list[Rejection] = field(default_factory=list)
    events_since_snapshot: int = 0
    changed_since_snapshot: bool = False
    force_snapshot: bool = False
    last_snapshot_at: float = field(default_factory=time.monotonic)

    @property
    def caught_up(self) -> bool:
        return self.next_offset >= self.replay_until

    def engine(self, domain: str, config: RoutingConfig) -> RoutingEngine:
        engine = self.engines.get(domain)
        if engine is None:
            engine = self.engines[domain] = RoutingEngine(config)
        return engine

    def snapshot_due(self, interval_s: float, every_events: int, idle_interval_s: float) -> bool:
        if self.pending or self.pending_rejections:
            return False  # the state is ahead of what was published: never save it
        if self.events_since_snapshot == 0:
            return False
        if self.force_snapshot:
            return True
        age = time.monotonic() - self.last_snapshot_at
        if self.changed_since_snapshot:
            return age >= interval_s or self.events_since_snapshot >= every_events
        return age >= idle_interval_s

    def take_snapshot(self, config_digest: str, instance: str) -> PartitionSnapshot:
        return PartitionSnapshot(
            partition=self.partition,
            offset=self.next_offset,
            last_tick=self.clock.last_tick,
            now=self.clock.now,
            domains={d: e.snapshot() for d, e in self.engines.items()},
            config_digest=config_digest,
            taken_at=datetime.now(UTC),
            instance=instance,
        )

    def mark_saved(self, offset: int) -> None:
        if offset == self.next_offset:
            self.events_since_snapshot = 0
            self.changed_since_snapshot = False
            self.force_snapshot = False
        self.last_snapshot_at = time.monotonic()

    @classmethod
    def restore(cls, snap: PartitionSnapshot, config: RoutingConfig) -> PartitionState:
        """Raises the core's ``SnapshotError`` for an engine snapshot it cannot read."""
        return cls(
            partition=snap.partition,
            next_offset=snap.offset,
            engines={d: RoutingEngine.restore(config, data) for d, data in snap.domains.items()},
            clock=PartitionClock(last_tick=snap.last_tick, now=snap.now),
        )

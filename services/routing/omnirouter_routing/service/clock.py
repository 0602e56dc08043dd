"""The time the engine sees: taken from the log, never from the wall clock, so replays are exact.

Ticks carry routing's own clock (written into the partition by its owner). Any other event moves time to
its ``occurred_at`` when that is later than the last tick, but never more than ``max_lead`` ahead of it:
``occurred_at`` comes from another service's clock, and a producer whose clock runs an hour fast must not
time out every offer. Time never goes backwards within a partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from omnirouter_shared.contracts.envelope import Envelope
from omnirouter_shared.contracts.routing import RoutingTick


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class PartitionClock:
    last_tick: datetime | None = None
    now: datetime | None = None

    def advance(self, envelope: Envelope, payload: object, max_lead: timedelta) -> datetime:
        """The engine time for this event (and the partition's new clock)."""
        if isinstance(payload, RoutingTick):
            candidate = _utc(payload.now)
            if self.last_tick is None or candidate > self.last_tick:
                self.last_tick = candidate
        else:
            candidate = _utc(envelope.occurred_at)
            if self.last_tick is not None:
                candidate = min(max(candidate, self.last_tick), self.last_tick + max_lead)
        if self.now is None or candidate > self.now:
            self.now = candidate
        return self.now

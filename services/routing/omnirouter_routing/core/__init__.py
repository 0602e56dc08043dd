"""The pure routing core: ``RoutingEngine.handle(event_id, payload, now) -> list[Decision]``.

No I/O and no wall clock: the Kafka service adapter feeds it the inbox log in order and publishes the
decisions; the simulator feeds it generated or recorded traffic.
"""

from omnirouter_routing.core.decisions import Decision, InputEvent, derive_id
from omnirouter_routing.core.engine import RoutingEngine
from omnirouter_routing.core.snapshot import SNAPSHOT_VERSION, SnapshotError
from omnirouter_routing.core.state import RoutingState, TaskPhase
from omnirouter_routing.core.stats import AgentStateCounts, QueueStats, RoutingStats

__all__ = [
    "SNAPSHOT_VERSION",
    "AgentStateCounts",
    "Decision",
    "InputEvent",
    "QueueStats",
    "RoutingEngine",
    "RoutingState",
    "RoutingStats",
    "SnapshotError",
    "TaskPhase",
    "derive_id",
]

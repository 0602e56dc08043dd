"""Real-time statistics per queue and agents by state: pure functions of the state and ``now``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from omnirouter_routing.config import RoutingConfig
from omnirouter_routing.core.capacity import has_any_room
from omnirouter_routing.core.state import QueueCounters, RoutingState, TaskPhase
from omnirouter_routing.core.waiting import WaitingIndex
from omnirouter_shared.contracts.agents import AgentKind, AgentStatus


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    waiting: int
    offered: int
    assigned: int
    #: Seconds the longest-waiting task (waiting or offered) has been in line.
    oldest_wait: float
    entered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    rejected_closed: int
    missed_offers: int
    #: Answered within the queue's threshold / (answered + abandoned); None before any outcome.
    service_level: float | None
    service_level_threshold: float
    average_speed_of_answer: float | None
    #: abandoned / (answered + abandoned); None before any outcome.
    abandonment_rate: float | None


@dataclass(frozen=True, slots=True)
class AgentStateCounts:
    offline: int
    available: int
    #: Available but with no room for any more work.
    busy: int
    away: int
    wrapup: int
    #: Agents with at least one task in hand (offered, assigned or wrapping up).
    working: int


@dataclass(frozen=True, slots=True)
class RoutingStats:
    queues: tuple[QueueStats, ...]
    agents: AgentStateCounts
    bots: AgentStateCounts


def _queue_stats(
    name: str,
    counters: QueueCounters,
    state: RoutingState,
    waiting: WaitingIndex,
    cfg: RoutingConfig,
    now: datetime,
) -> QueueStats:
    offered = assigned = 0
    oldest: datetime | None = None
    for task in state.tasks.values():
        if task.queue != name:
            continue
        if task.phase is TaskPhase.OFFERED:
            offered += 1
        elif task.phase is TaskPhase.ASSIGNED:
            assigned += 1
        if task.phase in (TaskPhase.WAITING, TaskPhase.OFFERED) and (
            oldest is None or task.enqueued_at < oldest
        ):
            oldest = task.enqueued_at
    outcomes = counters.answered + counters.abandoned
    return QueueStats(
        queue=name,
        waiting=waiting.count(name),
        offered=offered,
        assigned=assigned,
        oldest_wait=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        entered=counters.entered,
        answered=counters.answered,
        answered_within_threshold=counters.answered_within_sl,
        abandoned=counters.abandoned,
        rejected_closed=counters.rejected_closed,
        missed_offers=counters.missed_offers,
        service_level=counters.answered_within_sl / outcomes if outcomes else None,
        service_level_threshold=cfg.queue(name).service_level_threshold,
        average_speed_of_answer=counters.answer_wait_total / counters.answered if counters.answered else None,
        abandonment_rate=counters.abandoned / outcomes if outcomes else None,
    )


def _agent_counts(state: RoutingState, cfg: RoutingConfig, bots: bool) -> AgentStateCounts:
    counts = {"offline": 0, "available": 0, "busy": 0, "away": 0, "wrapup": 0, "working": 0}
    for agent in state.agents.values():
        if (agent.kind is AgentKind.BOT) != bots:
            continue
        if agent.tasks:
            counts["working"] += 1
        status = agent.status if agent.enabled else AgentStatus.OFFLINE
        if status is AgentStatus.AVAILABLE and not has_any_room(agent, cfg.capacity):
            counts["busy"] += 1
        else:
            counts[status.value] += 1
    return AgentStateCounts(**counts)


def compute_stats(
    state: RoutingState, waiting: WaitingIndex, cfg: RoutingConfig, now: datetime
) -> RoutingStats:
    names = sorted(set(cfg.queues) | set(state.counters))
    queues = tuple(
        _queue_stats(n, state.counters.get(n) or QueueCounters(), state, waiting, cfg, now) for n in names
    )
    return RoutingStats(
        queues=queues,
        agents=_agent_counts(state, cfg, bots=False),
        bots=_agent_counts(state, cfg, bots=True),
    )

"""Which agent fits a task, and in what order agents are preferred (the selection strategies)."""

from __future__ import annotations

from datetime import datetime

from omnirouter_routing.config import CapacityConfig, SelectionStrategy
from omnirouter_routing.core.capacity import has_room
from omnirouter_routing.core.state import Agent, Task
from omnirouter_shared.contracts.agents import AgentKind

_EPOCH_TS = 0.0


def meets_skills(agent: Agent, required: dict[str, int]) -> bool:
    skills = agent.skills
    return all(skills.get(s, 0) >= level for s, level in required.items())


def fits(agent: Agent, task: Task, cap: CapacityConfig, now: datetime, *, as_preferred: bool) -> bool:
    """Whether ``agent`` may be offered ``task`` now (the agent is known to be available).

    Bots only take tasks in their bot phase and humans only the others. A preferred agent (the last
    agent, or a transfer's target) skips the skill check: they were chosen for this customer already.
    """
    if task.bot_phase != (agent.kind is AgentKind.BOT):
        return False
    if task.declined:
        until = task.declined.get(agent.id)
        if until is not None and until > now:
            return False
    if not has_room(agent, task.channel, cap):
        return False
    return as_preferred or task.bot_phase or meets_skills(agent, task.required)


def _occupancy(agent: Agent, cap: CapacityConfig) -> float:
    if agent.kind is AgentKind.HUMAN:
        return agent.used_units / cap.units
    total = sum(agent.capacity.values()) or 1
    return sum(agent.per_channel.values()) / total


def rank_key(
    agent: Agent,
    task: Task,
    strategy: SelectionStrategy,
    cap: CapacityConfig,
    rr_cursor: str | None,
) -> tuple[float | int | str, ...]:
    """Smaller is better. Agents holding more of the task's preferred skills come first, then the
    queue's strategy decides; the agent id breaks every tie, so the choice never depends on the order
    agents are stored or iterated in."""
    preferred = -sum(1 for s, level in task.preferred.items() if agent.skills.get(s, 0) >= level)
    busy = 1 if agent.tasks else 0
    idle_ts = agent.idle_since.timestamp() if agent.idle_since else _EPOCH_TS
    if strategy is SelectionStrategy.LONGEST_IDLE:
        return (preferred, busy, idle_ts, agent.id)
    if strategy is SelectionStrategy.LEAST_OCCUPIED:
        return (preferred, _occupancy(agent, cap), idle_ts, agent.id)
    if strategy is SelectionStrategy.HIGHEST_PROFICIENCY:
        skills = agent.skills
        score = sum(skills.get(s, 0) for s in task.required) + sum(skills.get(s, 0) for s in task.preferred)
        return (preferred, -score, busy, idle_ts, agent.id)
    # Round robin: the first agent id after the one last served in this queue, wrapping around.
    after = 0 if rr_cursor is None or agent.id > rr_cursor else 1
    return (preferred, after, agent.id)

"""Available agents with room, kept in each strategy's order so a new task rarely scans them all.

Longest idle, least occupied and round robin order agents by something the agent alone determines, so
sorted lists updated when an agent's load or state changes let dispatch stop at the first agent that
fits. Highest proficiency depends on the task's skills and is ranked by a scan (see ``matching``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator

from omnirouter_routing.config import CapacityConfig
from omnirouter_routing.core.state import Agent
from omnirouter_shared.contracts.agents import AgentKind

IdleKey = tuple[int, float, str]
OccupancyKey = tuple[float, float, str]
#: (-proficiency, busy, idle since, id): the highest-proficiency order for a task needing one skill.
SkillKey = tuple[int, int, float, str]


def idle_key(agent: Agent) -> IdleKey:
    return (1 if agent.tasks else 0, agent.idle_since.timestamp() if agent.idle_since else 0.0, agent.id)


def occupancy(agent: Agent, cap: CapacityConfig) -> float:
    if agent.kind is AgentKind.HUMAN:
        return agent.used_units / cap.units
    total = sum(agent.capacity.values()) or 1
    return sum(agent.per_channel.values()) / total


_Keys = tuple[IdleKey, OccupancyKey, tuple[tuple[str, SkillKey], ...], dict[str, int]]


class ReadyIndex:
    """``tracked_skills``: skills kept in proficiency order (those deciding a highest-proficiency
    queue alone); tracking only these keeps updates cheap for everything else."""

    __slots__ = ("_by_id", "_by_idle", "_by_occupancy", "_by_skill", "_keys", "tracked_skills")

    def __init__(self, tracked_skills: frozenset[str] = frozenset()) -> None:
        self.tracked_skills = tracked_skills
        self._by_idle: list[IdleKey] = []
        self._by_occupancy: list[OccupancyKey] = []
        self._by_id: list[str] = []
        self._by_skill: dict[str, list[SkillKey]] = {}
        self._keys: dict[str, _Keys] = {}

    def __contains__(self, agent_id: str) -> bool:
        return agent_id in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._keys)

    def put(self, agent: Agent, cap: CapacityConfig) -> None:
        idle = idle_key(agent)
        occ = (occupancy(agent, cap), idle[1], agent.id)
        old = self._keys.get(agent.id)
        if old is None:
            insort(self._by_id, agent.id)
        else:
            if old[0] == idle and old[1] == occ:
                return
            del self._by_occupancy[bisect_left(self._by_occupancy, old[1])]
            if old[0] == idle and old[3] is agent.skills:
                # Most load changes move only the occupancy order (a chat agent stays "busy").
                insort(self._by_occupancy, occ)
                self._keys[agent.id] = (idle, occ, old[2], old[3])
                return
            del self._by_idle[bisect_left(self._by_idle, old[0])]
            if old[2]:
                self._remove_skill_keys(old[2])
        skills: tuple[tuple[str, SkillKey], ...] = ()
        if self.tracked_skills:
            skills = tuple(
                (skill, (-level, idle[0], idle[1], agent.id))
                for skill, level in agent.skills.items()
                if level > 0 and skill in self.tracked_skills
            )
        insort(self._by_idle, idle)
        insort(self._by_occupancy, occ)
        for skill, key in skills:
            insort(self._by_skill.setdefault(skill, []), key)
        # The skills dict itself is kept to notice a roster update (which replaces it) cheaply.
        self._keys[agent.id] = (idle, occ, skills, agent.skills)

    def discard(self, agent_id: str) -> None:
        old = self._keys.pop(agent_id, None)
        if old is not None:
            self._remove_keys(old)
            del self._by_id[bisect_left(self._by_id, agent_id)]

    def _remove_keys(self, keys: _Keys) -> None:
        del self._by_idle[bisect_left(self._by_idle, keys[0])]
        del self._by_occupancy[bisect_left(self._by_occupancy, keys[1])]
        self._remove_skill_keys(keys[2])

    def _remove_skill_keys(self, skill_keys: tuple[tuple[str, SkillKey], ...]) -> None:
        for skill, key in skill_keys:
            lst = self._by_skill[skill]
            del lst[bisect_left(lst, key)]

    # The iterators below are read-only views: callers stop iterating before changing the index.

    def longest_idle(self) -> Iterator[str]:
        return (k[2] for k in self._by_idle)

    def least_occupied(self) -> Iterator[str]:
        return (k[2] for k in self._by_occupancy)

    def most_proficient(self, skill: str) -> Iterator[str]:
        """Agents holding ``skill``, most proficient first (then longest idle)."""
        return (k[3] for k in self._by_skill.get(skill, ()))

    def round_robin(self, cursor: str | None) -> Iterator[str]:
        ids = self._by_id
        if cursor is None:
            return iter(ids)
        split = bisect_right(ids, cursor)
        return iter(ids[split:] + ids[:split])

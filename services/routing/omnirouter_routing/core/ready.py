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


def idle_key(agent: Agent) -> IdleKey:
    return (1 if agent.tasks else 0, agent.idle_since.timestamp() if agent.idle_since else 0.0, agent.id)


def occupancy(agent: Agent, cap: CapacityConfig) -> float:
    if agent.kind is AgentKind.HUMAN:
        return agent.used_units / cap.units
    total = sum(agent.capacity.values()) or 1
    return sum(agent.per_channel.values()) / total


class ReadyIndex:
    __slots__ = ("_by_id", "_by_idle", "_by_occupancy", "_keys")

    def __init__(self) -> None:
        self._by_idle: list[IdleKey] = []
        self._by_occupancy: list[OccupancyKey] = []
        self._by_id: list[str] = []
        self._keys: dict[str, tuple[IdleKey, OccupancyKey]] = {}

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
        if old is not None:
            if old == (idle, occ):
                return
            self._remove_keys(agent.id, old)
        else:
            insort(self._by_id, agent.id)
        insort(self._by_idle, idle)
        insort(self._by_occupancy, occ)
        self._keys[agent.id] = (idle, occ)

    def discard(self, agent_id: str) -> None:
        old = self._keys.pop(agent_id, None)
        if old is not None:
            self._remove_keys(agent_id, old)
            del self._by_id[bisect_left(self._by_id, agent_id)]

    def _remove_keys(self, agent_id: str, keys: tuple[IdleKey, OccupancyKey]) -> None:
        del self._by_idle[bisect_left(self._by_idle, keys[0])]
        del self._by_occupancy[bisect_left(self._by_occupancy, keys[1])]

    # The iterators below are read-only views: callers stop iterating before changing the index.

    def longest_idle(self) -> Iterator[str]:
        return (k[2] for k in self._by_idle)

    def least_occupied(self) -> Iterator[str]:
        return (k[2] for k in self._by_occupancy)

    def round_robin(self, cursor: str | None) -> Iterator[str]:
        ids = self._by_id
        if cursor is None:
            return iter(ids)
        split = bisect_right(ids, cursor)
        return iter(ids[split:] + ids[:split])

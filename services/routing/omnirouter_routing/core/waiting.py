"""Waiting tasks per queue, kept in serving order (pain #1: a real queue, not "unassigned" work).

Priority grows linearly with wait (``aging_per_minute``), so within one queue the order
``priority + rate * (now - enqueued_at)`` equals the order of ``priority - rate * enqueued_at``, which does
not change with time: a sorted list per queue is enough and nothing is re-sorted as the clock moves.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from datetime import datetime

#: Sort key: (-time-invariant score, enqueued timestamp, task id); the id makes ties deterministic.
WaitKey = tuple[float, float, str]


def wait_key(priority: int, aging_per_minute: float, enqueued_at: datetime, task_id: str) -> WaitKey:
    ts = enqueued_at.timestamp()
    return (-(priority - aging_per_minute * ts / 60.0), ts, task_id)


def effective_priority(priority: int, aging_per_minute: float, enqueued_at: datetime, now: datetime) -> float:
    return priority + aging_per_minute * (now - enqueued_at).total_seconds() / 60.0


class WaitingIndex:
    """Sorted waiting lists per queue with O(log n) lookup and removal by task id."""

    __slots__ = ("_keys", "_lists")

    def __init__(self) -> None:
        self._lists: dict[str, list[WaitKey]] = {}
        self._keys: dict[str, tuple[str, WaitKey]] = {}

    def add(self, queue: str, key: WaitKey) -> None:
        task_id = key[2]
        if task_id in self._keys:
            self.remove(task_id)
        insort(self._lists.setdefault(queue, []), key)
        self._keys[task_id] = (queue, key)

    def remove(self, task_id: str) -> bool:
        entry = self._keys.pop(task_id, None)
        if entry is None:
            return False
        queue, key = entry
        lst = self._lists[queue]
        i = bisect_left(lst, key)
        del lst[i]
        if not lst:
            del self._lists[queue]
        return True

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._keys

    def queues(self) -> list[str]:
        return sorted(self._lists)

    def in_order(self, queue: str) -> Iterator[str]:
        """Task ids of ``queue`` best first (iterate a copy if the caller mutates the index)."""
        for key in self._lists.get(queue, ()):
            yield key[2]

    def count(self, queue: str) -> int:
        return len(self._lists.get(queue, ()))

    def oldest_enqueued_ts(self, queue: str) -> float | None:
        lst = self._lists.get(queue)
        if not lst:
            return None
        return min(k[1] for k in lst)

    def __len__(self) -> int:
        return len(self._keys)

"""Due times of the core's time-outs, fired in a total order so replays and restores agree.

Entries are never cancelled: when one pops, the engine checks it against the state and skips it if the
state moved on (offer accepted, step already applied). The order key is (due, kind, ref), never the
insertion order, so an engine restored from a snapshot (which rebuilds its timers from the state) fires
exactly the entries the original would have.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from enum import IntEnum


class TimerKind(IntEnum):
    OFFER_EXPIRY = 0
    WRAPUP_END = 1
    ESCALATION = 2
    PREFERRED_END = 3
    BOT_END = 4
    DECLINE_END = 5
    CONVERSATION_WINDOW = 6


TimerEntry = tuple[datetime, int, str]


class Timers:
    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[TimerEntry] = []

    def push(self, due: datetime, kind: TimerKind, ref: str) -> None:
        heapq.heappush(self._heap, (due, int(kind), ref))

    def next_due_by(self, now: datetime) -> bool:
        return bool(self._heap) and self._heap[0][0] <= now

    def pop_due(self, now: datetime) -> TimerEntry | None:
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)
        return None

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)

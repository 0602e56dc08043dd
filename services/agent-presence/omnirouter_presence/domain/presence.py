"""Presence states: what an agent chose, and what that amounts to given the work they hold.

An agent chooses offline, available, away (with a reason code) or wrap-up. "Busy" is never chosen: an
available agent with no free capacity on any channel is busy, and an available agent finishing the
after-contact work of a completed task is in wrap-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from omnirouter_shared.contracts.agents import AgentStatus


class PresenceState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    AWAY = "away"
    WRAPUP = "wrapup"
    BUSY = "busy"


class InvalidStatus(ValueError):
    """A status change the agent may not make; ``code`` is the API error code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def validate_status(
    status: str, reason: str | None, away_reasons: tuple[str, ...]
) -> tuple[AgentStatus, str | None]:
    """Return the status and the reason code to record; away needs a known reason (default "break")."""
    try:
        chosen = AgentStatus(status)
    except ValueError:
        allowed = ", ".join(s.value for s in AgentStatus)
        raise InvalidStatus("invalid_status", f"status must be one of {allowed}") from None
    if chosen is AgentStatus.AWAY:
        code = reason or (away_reasons[0] if away_reasons else "break")
        if code not in away_reasons:
            raise InvalidStatus("invalid_reason", f"away reason must be one of {', '.join(away_reasons)}")
        return chosen, code
    return chosen, reason


def derive_state(
    status: AgentStatus,
    capacity: Mapping[str, int],
    load: Mapping[str, int],
    tasks_in_wrapup: int,
) -> PresenceState:
    if status is not AgentStatus.AVAILABLE:
        return PresenceState(status.value)
    if tasks_in_wrapup > 0:
        return PresenceState.WRAPUP
    if not any(cap > load.get(channel, 0) for channel, cap in capacity.items()):
        return PresenceState.BUSY
    return PresenceState.AVAILABLE


def free_capacity(capacity: Mapping[str, int], load: Mapping[str, int]) -> dict[str, int]:
    return {channel: max(0, cap - load.get(channel, 0)) for channel, cap in capacity.items()}

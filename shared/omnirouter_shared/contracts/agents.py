"""Agents' and bots' roster, states and actions (agent-presence -> routing)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from omnirouter_shared.contracts.common import Channel, Model


class AgentKind(StrEnum):
    HUMAN = "human"
    BOT = "bot"


class AgentStatus(StrEnum):
    """What an agent chose (busy is not a status: it follows from load and capacity)."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    AWAY = "away"
    WRAPUP = "wrapup"


class AgentUpserted(Model):
    TYPE: ClassVar[str] = "agent.upserted"
    VERSION: ClassVar[int] = 1

    agent_id: str
    name: str
    kind: AgentKind = AgentKind.HUMAN
    skills: dict[str, int] = Field(default_factory=dict)  # skill -> proficiency 1..10
    capacity: dict[Channel, int] = Field(default_factory=dict)  # channel -> max concurrent
    teams: tuple[str, ...] = ()
    enabled: bool = True


class AgentStatusChanged(Model):
    TYPE: ClassVar[str] = "agent.status_changed"
    VERSION: ClassVar[int] = 1

    agent_id: str
    status: AgentStatus
    reason: str | None = None  # break reason code, "heartbeat lost", ...


class OfferAccepted(Model):
    TYPE: ClassVar[str] = "offer.accepted"
    VERSION: ClassVar[int] = 1

    offer_id: str
    task_id: str
    agent_id: str


class OfferRejected(Model):
    TYPE: ClassVar[str] = "offer.rejected"
    VERSION: ClassVar[int] = 1

    offer_id: str
    task_id: str
    agent_id: str
    reason: str | None = None


class TaskCompleted(Model):
    TYPE: ClassVar[str] = "task.completed"
    VERSION: ClassVar[int] = 1

    task_id: str
    agent_id: str
    #: Close the customer's conversation too (otherwise it stays open for its channel window).
    close_conversation: bool = False
    disposition: str | None = None


class WrapupDone(Model):
    TYPE: ClassVar[str] = "wrapup.done"
    VERSION: ClassVar[int] = 1

    task_id: str
    agent_id: str


class TransferRequested(Model):
    """Agent -> agent (``to_agent_id``) or agent -> queue (``to_queue``), or a bot's hand-off."""

    TYPE: ClassVar[str] = "task.transfer_requested"
    VERSION: ClassVar[int] = 1

    task_id: str
    from_agent_id: str
    to_agent_id: str | None = None
    to_queue: str | None = None
    #: Bot hand-off: the intent the bot collected and its transcript travel with the task.
    intent: str | None = None
    transcript: tuple[str, ...] = ()
    note: str | None = None

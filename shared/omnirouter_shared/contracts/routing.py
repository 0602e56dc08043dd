"""Decisions published by routing (routing -> agent-presence, identity-resolution timeline)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from omnirouter_shared.contracts.common import Address, Attachment, Channel, Model
from omnirouter_shared.contracts.identity import TimelineItem


class TaskMessage(Model):
    """A customer message as the agent sees it inside an offer or an assigned conversation."""

    interaction_id: str
    channel: Channel
    sender: Address
    subject: str | None = None
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime


class TaskView(Model):
    """What an agent's desktop needs to decide on and work a task."""

    id: str
    conversation_id: str
    customer_id: str
    customer_name: str | None = None
    channel: Channel
    queue: str
    priority: int
    required_skills: dict[str, int] = Field(default_factory=dict)
    intent: str | None = None
    messages: tuple[TaskMessage, ...] = ()
    history: tuple[TimelineItem, ...] = ()
    transcript: tuple[str, ...] = ()
    #: Where a reply goes: the customer's address on the channel, and the business address used.
    reply_to: Address | None = None
    reply_from: Address | None = None
    created_at: datetime


class TaskOffered(Model):
    TYPE: ClassVar[str] = "task.offered"
    VERSION: ClassVar[int] = 1

    offer_id: str
    agent_id: str
    task: TaskView
    expires_at: datetime


class OfferRescinded(Model):
    TYPE: ClassVar[str] = "offer.rescinded"
    VERSION: ClassVar[int] = 1

    offer_id: str
    task_id: str
    agent_id: str
    reason: str  # timeout, rejected, abandoned, agent_offline, merged, ...


class TaskAssigned(Model):
    TYPE: ClassVar[str] = "task.assigned"
    VERSION: ClassVar[int] = 1

    task_id: str
    agent_id: str
    task: TaskView


class ConversationMessage(Model):
    """A new customer message in a conversation already assigned to ``agent_id`` (sticky)."""

    TYPE: ClassVar[str] = "conversation.message"
    VERSION: ClassVar[int] = 1

    task_id: str
    agent_id: str
    conversation_id: str
    message: TaskMessage


class TaskQueued(Model):
    TYPE: ClassVar[str] = "task.queued"
    VERSION: ClassVar[int] = 1

    task_id: str
    conversation_id: str
    customer_id: str
    queue: str
    priority: int
    channel: Channel
    reason: str  # new, requeued_timeout, requeued_rejected, escalated, transferred, ...


class TaskClosed(Model):
    TYPE: ClassVar[str] = "task.closed"
    VERSION: ClassVar[int] = 1

    task_id: str
    conversation_id: str
    customer_id: str
    agent_id: str | None = None
    reason: str  # completed, abandoned, merged, closed_hours, ...


class AgentStateForced(Model):
    """Routing changed an agent's state itself (e.g. away after N missed offers)."""

    TYPE: ClassVar[str] = "agent.state_forced"
    VERSION: ClassVar[int] = 1

    agent_id: str
    status: str
    reason: str


class RoutingTick(Model):
    """Routing's own clock, written into its inbox so time-outs replay exactly like other input."""

    TYPE: ClassVar[str] = "routing.tick"
    VERSION: ClassVar[int] = 1

    now: datetime

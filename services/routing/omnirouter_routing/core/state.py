"""The routing state: agents, tasks, conversations and counters (plain data, no behaviour).

Everything here is snapshotted; indexes derived from it (waiting lists, timers, ready agents) are
rebuilt by the engine, so a restored engine cannot disagree with its own data.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from omnirouter_shared.contracts.agents import AgentKind, AgentStatus
from omnirouter_shared.contracts.common import Address, Channel
from omnirouter_shared.contracts.identity import TimelineItem
from omnirouter_shared.contracts.routing import TaskMessage


class TaskPhase(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    #: Completed; the agent's slot stays held until wrap-up is done or its time limit passes.
    WRAPUP = "wrapup"


@dataclass(slots=True)
class Offer:
    offer_id: str
    agent_id: str
    expires_at: datetime


@dataclass(slots=True)
class Task:
    id: str
    conversation_id: str
    customer_id: str
    customer_name: str | None
    channel: Channel
    queue: str
    required: dict[str, int]
    preferred: dict[str, int]
    intent: str | None
    #: Priority points from intents and escalations, on top of the queue's and the channel's.
    boost: int
    created_at: datetime
    #: The customer's place in line: kept across re-queues, transfers and overflows.
    enqueued_at: datetime
    #: When the task entered its current queue: the clock of that queue's escalation steps.
    queue_entered_at: datetime
    phase: TaskPhase = TaskPhase.WAITING
    step: int = 0
    messages: list[TaskMessage] = field(default_factory=list)
    history: tuple[TimelineItem, ...] = ()
    transcript: list[str] = field(default_factory=list)
    reply_to: Address | None = None
    reply_from: Address | None = None
    interaction_ids: list[str] = field(default_factory=list)
    offer: Offer | None = None
    offer_seq: int = 0
    agent_id: str | None = None
    #: Capacity units and channel charged to ``agent_id`` (fixed when charged: a reload can change weights).
    charged_units: int = 0
    charged_channel: Channel | None = None
    preferred_agent: str | None = None
    preferred_until: datetime | None = None
    bot_phase: bool = False
    bot_until: datetime | None = None
    #: agent id -> until when that agent is not offered this task again (they rejected or missed it).
    declined: dict[str, datetime] = field(default_factory=dict)
    wrapup_until: datetime | None = None
    answered: bool = False


@dataclass(slots=True)
class Agent:
    id: str
    name: str
    kind: AgentKind
    skills: dict[str, int]
    capacity: dict[Channel, int]
    enabled: bool = True
    status: AgentStatus = AgentStatus.OFFLINE
    #: Since when the agent has had no work (or became available); the longest-idle ordering.
    idle_since: datetime | None = None
    used_units: int = 0
    per_channel: dict[Channel, int] = field(default_factory=dict)
    #: Tasks holding a slot of this agent (offered, assigned or in wrap-up), in the order taken.
    tasks: list[str] = field(default_factory=list)
    missed_in_row: int = 0


@dataclass(slots=True)
class Conversation:
    id: str
    customer_id: str
    opened_at: datetime
    last_message_at: datetime
    last_channel: Channel
    #: The live task new messages join; None once it completed (the conversation stays open for its
    #: channel window and the next contact becomes a new task, sticky to ``last_agent_id``).
    task_id: str | None
    last_agent_id: str | None = None


@dataclass(slots=True)
class QueueCounters:
    entered: int = 0
    answered: int = 0
    answered_within_sl: int = 0
    answer_wait_total: float = 0.0
    abandoned: int = 0
    rejected_closed: int = 0
    offers: int = 0
    missed_offers: int = 0


@dataclass(slots=True)
class RoutingState:
    clock: datetime | None = None
    agents: dict[str, Agent] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    conversations: dict[str, Conversation] = field(default_factory=dict)
    #: customer id -> last agent id and when, oldest first (pruned after ``last_agent_memory``).
    last_agent: OrderedDict[str, tuple[str, datetime]] = field(default_factory=OrderedDict)
    #: Recently applied input event ids, oldest first (idempotency under redelivery).
    recent_events: OrderedDict[str, None] = field(default_factory=OrderedDict)
    applied_merges: OrderedDict[str, None] = field(default_factory=OrderedDict)
    counters: dict[str, QueueCounters] = field(default_factory=dict)
    #: queue -> agent id last offered a task in that queue (round robin resumes after it).
    rr_cursor: dict[str, str] = field(default_factory=dict)

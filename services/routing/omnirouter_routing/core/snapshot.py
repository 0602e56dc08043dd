"""Versioned JSON snapshots of the routing state (orjson), for restart and fail-over."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

import orjson

from omnirouter_routing.core.state import (
    Agent,
    Conversation,
    Offer,
    QueueCounters,
    RoutingState,
    Task,
    TaskPhase,
)
from omnirouter_shared.contracts.agents import AgentKind, AgentStatus
from omnirouter_shared.contracts.common import Address, Channel
from omnirouter_shared.contracts.identity import TimelineItem
from omnirouter_shared.contracts.routing import TaskMessage

SNAPSHOT_VERSION = 1


class SnapshotError(ValueError):
    """The bytes are not a snapshot this version of the core can read."""


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _req_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _task_out(t: Task) -> dict[str, Any]:
    return {
        "id": t.id,
        "conversation_id": t.conversation_id,
        "customer_id": t.customer_id,
        "customer_name": t.customer_name,
        "channel": t.channel.value,
        "queue": t.queue,
        "required": t.required,
        "preferred": t.preferred,
        "intent": t.intent,
        "boost": t.boost,
        "created_at": _ts(t.created_at),
        "enqueued_at": _ts(t.enqueued_at),
        "queue_entered_at": _ts(t.queue_entered_at),
        "phase": t.phase.value,
        "step": t.step,
        "messages": [m.model_dump(mode="json") for m in t.messages],
        "history": [h.model_dump(mode="json") for h in t.history],
        "transcript": t.transcript,
        "reply_to": t.reply_to.model_dump(mode="json") if t.reply_to else None,
        "reply_from": t.reply_from.model_dump(mode="json") if t.reply_from else None,
        "interaction_ids": t.interaction_ids,
        "offer": (
            {
                "offer_id": t.offer.offer_id,
                "agent_id": t.offer.agent_id,
                "expires_at": _ts(t.offer.expires_at),
            }
            if t.offer
            else None
        ),
        "offer_seq": t.offer_seq,
        "agent_id": t.agent_id,
        "charged_units": t.charged_units,
        "charged_channel": t.charged_channel.value if t.charged_channel else None,
        "preferred_agent": t.preferred_agent,
        "preferred_until": _ts(t.preferred_until),
        "bot_phase": t.bot_phase,
        "bot_until": _ts(t.bot_until),
        "declined": {a: _ts(u) for a, u in t.declined.items()},
        "wrapup_until": _ts(t.wrapup_until),
        "answered": t.answered,
    }


def _task_in(d: dict[str, Any]) -> Task:
    offer = d["offer"]
    return Task(
        id=d["id"],
        conversation_id=d["conversation_id"],
        customer_id=d["customer_id"],
        customer_name=d["customer_name"],
        channel=Channel(d["channel"]),
        queue=d["queue"],
        required=dict(d["required"]),
        preferred=dict(d["preferred"]),
        intent=d["intent"],
        boost=d["boost"],
        created_at=_req_dt(d["created_at"]),
        enqueued_at=_req_dt(d["enqueued_at"]),
        queue_entered_at=_req_dt(d["queue_entered_at"]),
        phase=TaskPhase(d["phase"]),
        step=d["step"],
        messages=[TaskMessage.model_validate(m) for m in d["messages"]],
        history=tuple(TimelineItem.model_validate(h) for h in d["history"]),
        transcript=list(d["transcript"]),
        reply_to=Address.model_validate(d["reply_to"]) if d["reply_to"] else None,
        reply_from=Address.model_validate(d["reply_from"]) if d["reply_from"] else None,
        interaction_ids=list(d["interaction_ids"]),
        offer=Offer(offer["offer_id"], offer["agent_id"], _req_dt(offer["expires_at"])) if offer else None,
        offer_seq=d["offer_seq"],
        agent_id=d["agent_id"],
        charged_units=d["charged_units"],
        charged_channel=Channel(d["charged_channel"]) if d["charged_channel"] else None,
        preferred_agent=d["preferred_agent"],
        preferred_until=_dt(d["preferred_until"]),
        bot_phase=d["bot_phase"],
        bot_until=_dt(d["bot_until"]),
        declined={a: _req_dt(u) for a, u in d["declined"].items()},
        wrapup_until=_dt(d["wrapup_until"]),
        answered=d["answered"],
    )


def _agent_out(a: Agent) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "kind": a.kind.value,
        "skills": a.skills,
        "capacity": {c.value: n for c, n in a.capacity.items()},
        "enabled": a.enabled,
        "status": a.status.value,
        "idle_since": _ts(a.idle_since),
        "used_units": a.used_units,
        "per_channel": {c.value: n for c, n in a.per_channel.items()},
        "tasks": a.tasks,
        "missed_in_row": a.missed_in_row,
    }


def _agent_in(d: dict[str, Any]) -> Agent:
    return Agent(
        id=d["id"],
        name=d["name"],
        kind=AgentKind(d["kind"]),
        skills=dict(d["skills"]),
        capacity={Channel(c): n for c, n in d["capacity"].items()},
        enabled=d["enabled"],
        status=AgentStatus(d["status"]),
        idle_since=_dt(d["idle_since"]),
        used_units=d["used_units"],
        per_channel={Channel(c): n for c, n in d["per_channel"].items()},
        tasks=list(d["tasks"]),
        missed_in_row=d["missed_in_row"],
    )


def _conv_out(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "customer_id": c.customer_id,
        "opened_at": _ts(c.opened_at),
        "last_message_at": _ts(c.last_message_at),
        "last_channel": c.last_channel.value,
        "task_id": c.task_id,
        "last_agent_id": c.last_agent_id,
    }


def _conv_in(d: dict[str, Any]) -> Conversation:
    return Conversation(
        id=d["id"],
        customer_id=d["customer_id"],
        opened_at=_req_dt(d["opened_at"]),
        last_message_at=_req_dt(d["last_message_at"]),
        last_channel=Channel(d["last_channel"]),
        task_id=d["task_id"],
        last_agent_id=d["last_agent_id"],
    )


_COUNTER_FIELDS = tuple(QueueCounters.__dataclass_fields__)


def dump_state(state: RoutingState) -> bytes:
    doc = {
        "version": SNAPSHOT_VERSION,
        "clock": _ts(state.clock),
        "agents": [_agent_out(a) for a in state.agents.values()],
        "tasks": [_task_out(t) for t in state.tasks.values()],
        "conversations": [_conv_out(c) for c in state.conversations.values()],
        "last_agent": [[cust, agent, _ts(at)] for cust, (agent, at) in state.last_agent.items()],
        "recent_events": list(state.recent_events),
        "applied_merges": list(state.applied_merges),
        "counters": {q: {f: getattr(c, f) for f in _COUNTER_FIELDS} for q, c in state.counters.items()},
        "rr_cursor": state.rr_cursor,
    }
    return orjson.dumps(doc)


def load_state(data: bytes) -> RoutingState:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"snapshot is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != SNAPSHOT_VERSION:
        found = doc.get("version") if isinstance(doc, dict) else None
        raise SnapshotError(f"unsupported snapshot version {found!r} (expected {SNAPSHOT_VERSION})")
    try:
        return RoutingState(
            clock=_dt(doc["clock"]),
            agents={a["id"]: _agent_in(a) for a in doc["agents"]},
            tasks={t["id"]: _task_in(t) for t in doc["tasks"]},
            conversations={c["id"]: _conv_in(c) for c in doc["conversations"]},
            last_agent=OrderedDict((cust, (agent, _req_dt(at))) for cust, agent, at in doc["last_agent"]),
            recent_events=OrderedDict.fromkeys(doc["recent_events"]),
            applied_merges=OrderedDict.fromkeys(doc["applied_merges"]),
            counters={q: QueueCounters(**c) for q, c in doc["counters"].items()},
            rr_cursor=dict(doc["rr_cursor"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"corrupt snapshot: {exc!r}") from exc

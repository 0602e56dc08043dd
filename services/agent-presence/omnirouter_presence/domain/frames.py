"""What a routing decision means for an agent's desktop: the frame it is shown, and how the offer or
task it concerns changes. Pure: the repository applies the effects, the hub delivers the frames."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from omnirouter_shared.contracts.routing import (
    AgentStateForced,
    ConversationMessage,
    OfferRescinded,
    TaskAssigned,
    TaskClosed,
    TaskOffered,
)

Frame = dict[str, Any]


class OfferState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RESCINDED = "rescinded"


class TaskState(StrEnum):
    ASSIGNED = "assigned"
    WRAPUP = "wrapup"
    DONE = "done"
    TRANSFERRED = "transferred"
    CLOSED = "closed"


#: Tasks that count against the agent's capacity and whose customer the agent may see.
ACTIVE_TASK_STATES = (TaskState.ASSIGNED.value, TaskState.WRAPUP.value)


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision for one agent: ``frame`` goes to the desktop, ``payload`` drives the state change."""

    agent_id: str
    frame: Frame
    payload: BaseModel


def offer_frame(offer: TaskOffered) -> Frame:
    return {
        "type": "offer",
        "offer_id": offer.offer_id,
        "expires_at": offer.expires_at.isoformat(),
        "task": offer.task.model_dump(mode="json"),
    }


def assigned_frame(task_id: str, task: dict[str, Any]) -> Frame:
    return {"type": "assigned", "task_id": task_id, "task": task}


def decision_for(payload: BaseModel) -> Decision | None:
    """The desktop's view of a decision, or None when it concerns no agent (e.g. TaskQueued)."""
    frame: Frame
    match payload:
        case TaskOffered():
            return Decision(payload.agent_id, offer_frame(payload), payload)
        case OfferRescinded():
            frame = {
                "type": "rescind",
                "offer_id": payload.offer_id,
                "task_id": payload.task_id,
                "reason": payload.reason,
            }
            return Decision(payload.agent_id, frame, payload)
        case TaskAssigned():
            return Decision(
                payload.agent_id,
                assigned_frame(payload.task_id, payload.task.model_dump(mode="json")),
                payload,
            )
        case ConversationMessage():
            frame = {
                "type": "message",
                "task_id": payload.task_id,
                "conversation_id": payload.conversation_id,
                "message": payload.message.model_dump(mode="json"),
            }
            return Decision(payload.agent_id, frame, payload)
        case AgentStateForced():
            frame = {"type": "state_forced", "status": payload.status, "reason": payload.reason}
            return Decision(payload.agent_id, frame, payload)
        case TaskClosed() if payload.agent_id:
            frame = {"type": "closed", "task_id": payload.task_id, "reason": payload.reason}
            return Decision(payload.agent_id, frame, payload)
    return None

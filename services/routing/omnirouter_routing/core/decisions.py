"""What the core returns: decision payloads with deterministic event ids and their Kafka keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import BaseModel

from omnirouter_shared.contracts.agents import (
    AgentStatusChanged,
    AgentUpserted,
    OfferAccepted,
    OfferRejected,
    TaskCompleted,
    TransferRequested,
    WrapupDone,
)
from omnirouter_shared.contracts.identity import (
    CustomerErased,
    CustomersMerged,
    CustomerSplit,
    InteractionResolved,
    InteractionStatusResolved,
)
from omnirouter_shared.contracts.routing import RoutingTick

#: Namespace of every id the core derives; changing it would change every replayed id.
ROUTING_NS = uuid.UUID("3b0c8d5e-57a4-4f0e-9d0a-6a2f8b1e4c77")

#: The input payload types the core understands; anything else is ignored (and reported by ``handle``).
InputEvent = (
    InteractionResolved
    | InteractionStatusResolved
    | CustomersMerged
    | CustomerSplit
    | CustomerErased
    | AgentUpserted
    | AgentStatusChanged
    | OfferAccepted
    | OfferRejected
    | TaskCompleted
    | WrapupDone
    | TransferRequested
    | RoutingTick
)


@dataclass(frozen=True, slots=True)
class Decision:
    """One event for omni.routing.decisions.

    ``event_id`` is derived from the causing input's id and the decision's position, so replaying the
    input log re-emits identical ids that consumers deduplicate. ``key`` is the agent id when the
    decision concerns an agent (their desktop's ordered stream), else the task id.
    """

    event_id: str
    key: str
    payload: BaseModel


def derive_id(*parts: str) -> str:
    return str(uuid.uuid5(ROUTING_NS, "/".join(parts)))

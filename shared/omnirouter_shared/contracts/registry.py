"""Every payload type, by (type, schema_version): the closed set a consumer can decode."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from omnirouter_shared.contracts import agents, identity, interactions, replies, routing
from omnirouter_shared.contracts.envelope import Envelope

_MODELS: tuple[type[BaseModel], ...] = (
    interactions.InteractionReceived,
    interactions.InteractionStatusChanged,
    identity.InteractionResolved,
    identity.InteractionStatusResolved,
    identity.CustomersMerged,
    identity.CustomerSplit,
    identity.CustomerErased,
    identity.ConsentChanged,
    agents.AgentUpserted,
    agents.AgentStatusChanged,
    agents.OfferAccepted,
    agents.OfferRejected,
    agents.TaskCompleted,
    agents.WrapupDone,
    agents.TransferRequested,
    routing.TaskOffered,
    routing.OfferRescinded,
    routing.TaskAssigned,
    routing.ConversationMessage,
    routing.TaskQueued,
    routing.TaskClosed,
    routing.AgentStateForced,
    routing.RoutingTick,
    replies.ReplyRequested,
    replies.ReplyDeliveryStatus,
)

EVENT_TYPES: dict[tuple[str, int], type[BaseModel]] = {
    (m.TYPE, m.VERSION): m  # type: ignore[attr-defined]
    for m in _MODELS
}


class UnknownEventType(ValueError):
    pass


class InvalidPayload(ValueError):
    pass


def parse_payload(envelope: Envelope) -> BaseModel:
    """Validate the payload against the model its envelope names; raises on unknown or invalid."""
    model = EVENT_TYPES.get((envelope.type, envelope.schema_version))
    if model is None:
        raise UnknownEventType(f"unknown event type {envelope.type!r} v{envelope.schema_version}")
    try:
        return model.model_validate(envelope.payload)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidPayload(f"invalid {envelope.type} v{envelope.schema_version}: {errs}") from exc

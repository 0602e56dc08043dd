"""The versioned envelope every event travels in, and its JSON wire encoding."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENVELOPE_VERSION = 1
DEFAULT_ROUTING_DOMAIN = "default"


class Envelope(BaseModel):
    """Metadata common to every event; ``payload`` is validated separately by type and version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    envelope_version: int = ENVELOPE_VERSION
    event_id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=128)
    schema_version: int = Field(ge=1)
    occurred_at: datetime
    correlation_id: str = Field(min_length=1, max_length=128)
    causation_id: str | None = None
    routing_domain: str = Field(default=DEFAULT_ROUTING_DOMAIN, min_length=1, max_length=128)
    producer: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]


class PayloadModel(BaseModel):
    """Structural type of the payload models: each declares ``TYPE`` and ``VERSION`` class vars."""


def new_envelope(
    payload: BaseModel,
    *,
    producer: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    routing_domain: str = DEFAULT_ROUTING_DOMAIN,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Wrap a payload model. Pass ``event_id`` when it must be deterministic (replays, redeliveries)."""
    event_type: str = getattr(payload, "TYPE")  # noqa: B009 - class var on every payload model
    version: int = getattr(payload, "VERSION")  # noqa: B009
    eid = event_id or str(uuid.uuid4())
    return Envelope(
        event_id=eid,
        type=event_type,
        schema_version=version,
        occurred_at=occurred_at or datetime.now(UTC),
        correlation_id=correlation_id or eid,
        causation_id=causation_id,
        routing_domain=routing_domain,
        producer=producer,
        payload=payload.model_dump(mode="json"),
    )


def encode_envelope(envelope: Envelope) -> bytes:
    return orjson.dumps(envelope.model_dump(mode="json"))


class MalformedEnvelope(ValueError):
    """The bytes are not an envelope: a poison message for any consumer."""


def decode_envelope(raw: bytes | None) -> Envelope:
    if raw is None:
        raise MalformedEnvelope("empty value (tombstone) where an event was expected")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedEnvelope(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedEnvelope("envelope is not a JSON object")
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise MalformedEnvelope(f"invalid envelope: {_short(exc)}") from exc


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])

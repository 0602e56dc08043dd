"""Turning the core's decisions into what leaves the service: envelopes and audit rows (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from omnirouter_routing.core import Decision
from omnirouter_shared.contracts.envelope import Envelope, new_envelope

PRODUCER = "routing"


@dataclass(frozen=True, slots=True)
class AuditRow:
    event_id: str
    type: str
    routing_domain: str
    task_id: str | None
    agent_id: str | None
    queue: str | None
    payload_json: str
    decided_at: datetime
    causation_id: str
    inbox_partition: int
    inbox_offset: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One decision ready to publish (keyed as the core says) and to audit."""

    key: str
    envelope: Envelope
    audit: AuditRow


def _attr(payload: object, name: str) -> str | None:
    value = getattr(payload, name, None)
    return value if isinstance(value, str) else None


def _task_id(payload: object) -> str | None:
    task = getattr(payload, "task", None)
    return _attr(payload, "task_id") or (_attr(task, "id") if task is not None else None)


def _queue(payload: object) -> str | None:
    task = getattr(payload, "task", None)
    return _attr(payload, "queue") or (_attr(task, "queue") if task is not None else None)


def outgoing(
    decision: Decision,
    *,
    cause: Envelope,
    domain: str,
    decided_at: datetime,
    partition: int,
    offset: int,
) -> Outgoing:
    """The envelope's id, time and correlation come only from the log, so a replay rebuilds it exactly."""
    env = new_envelope(
        decision.payload,
        producer=PRODUCER,
        event_id=decision.event_id,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
        routing_domain=domain,
        occurred_at=decided_at,
    )
    row = AuditRow(
        event_id=env.event_id,
        type=env.type,
        routing_domain=domain,
        task_id=_task_id(decision.payload),
        agent_id=_attr(decision.payload, "agent_id"),
        queue=_queue(decision.payload),
        payload_json=orjson.dumps(env.payload).decode(),
        decided_at=decided_at,
        causation_id=cause.event_id,
        inbox_partition=partition,
        inbox_offset=offset,
    )
    return Outgoing(decision.key, env, row)

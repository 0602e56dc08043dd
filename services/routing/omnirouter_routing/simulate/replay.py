"""Reading recorded inbox traffic (JSON lines of envelopes, as on omni.routing.inbox) for a what-if.

Customer-side events are replayed at their recorded times; the agents become simulated agents with the
recorded roster, and each task keeps its recorded handling time when the recording has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from omnirouter_shared.contracts import decode_envelope, parse_payload
from omnirouter_shared.contracts.agents import AgentUpserted, OfferAccepted, TaskCompleted
from omnirouter_shared.contracts.identity import (
    CustomerErased,
    CustomersMerged,
    CustomerSplit,
    InteractionResolved,
    InteractionStatusResolved,
)

_CUSTOMER_SIDE = (
    InteractionResolved,
    InteractionStatusResolved,
    CustomersMerged,
    CustomerSplit,
    CustomerErased,
)


class RecordingError(ValueError):
    pass


@dataclass
class Recording:
    inputs: list[tuple[datetime, BaseModel]]
    agents: list[AgentUpserted]
    handle_times: dict[str, float]
    start: datetime
    end: datetime


def load_recording(path: str | Path) -> Recording:
    inputs: list[tuple[datetime, BaseModel]] = []
    roster: dict[str, AgentUpserted] = {}
    accepted: dict[str, datetime] = {}
    handle_times: dict[str, float] = {}
    with Path(path).open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                envelope = decode_envelope(line)
                payload = parse_payload(envelope)
            except ValueError as exc:
                raise RecordingError(f"{path}:{lineno}: {exc}") from exc
            when = envelope.occurred_at
            if isinstance(payload, _CUSTOMER_SIDE):
                inputs.append((when, payload))
            elif isinstance(payload, AgentUpserted):
                roster[payload.agent_id] = payload
            elif isinstance(payload, OfferAccepted):
                accepted.setdefault(payload.task_id, when)
            elif isinstance(payload, TaskCompleted) and payload.task_id in accepted:
                handle_times[payload.task_id] = (when - accepted[payload.task_id]).total_seconds()
    if not inputs:
        raise RecordingError(f"{path}: no customer events (interaction.resolved, ...) to replay")
    inputs.sort(key=lambda item: item[0])
    return Recording(
        inputs=inputs,
        agents=[roster[a] for a in sorted(roster)],
        handle_times=handle_times,
        start=inputs[0][0],
        end=inputs[-1][0],
    )

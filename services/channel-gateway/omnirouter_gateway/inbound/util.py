"""Small helpers shared by the vendor adapters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from omnirouter_gateway.inbound.base import Malformed

_STATUS_NS = uuid.UUID("0b8f4a1e-3c57-4d52-9e0f-6a2d1c9b7e31")


def status_event_id(vendor: str, dedup_key: str) -> str:
    """Deterministic id for a status event, so a redelivered receipt is the same event."""
    return str(uuid.uuid5(_STATUS_NS, f"{vendor}:{dedup_key}"))


def require(fields: dict[str, Any], name: str, vendor: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"{vendor} webhook without {name}")
    return value.strip()


def from_epoch(value: Any) -> datetime | None:
    """Seconds (or milliseconds) since the epoch, as vendors send them; None when unusable."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number > 1e11:
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def clip(text: str | None, limit: int = 64_000) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit]

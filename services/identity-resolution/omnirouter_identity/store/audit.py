"""The audit trail: ids, counts and reasons only. Never an identifier value, a name or a message, so it
can outlive an erasure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg
import orjson


async def record(
    conn: asyncpg.Connection,
    *,
    actor: str,
    action: str,
    profile_id: str,
    others: Sequence[str] = (),
    detail: Mapping[str, object] | None = None,
    at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO audit_log (at, actor, action, profile_id, other_profile_ids, detail)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb)
        """,
        at,
        actor,
        action,
        profile_id,
        list(others),
        orjson.dumps(dict(detail or {})).decode(),
    )

"""Exactly-once effects on an at-least-once log: claim event ids in the transaction that applies them."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


async def claim_events(conn: asyncpg.Connection, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """Return the ids this call claimed (never seen before for ``consumer``). Call it inside the
    transaction that applies the events' effects: if that transaction rolls back, so does the claim."""
    if not event_ids:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO processed_events (consumer, event_id)
        SELECT $1, unnest($2::text[])
        ON CONFLICT DO NOTHING
        RETURNING event_id
        """,
        consumer,
        list(dict.fromkeys(event_ids)),
    )
    return {r["event_id"] for r in rows}

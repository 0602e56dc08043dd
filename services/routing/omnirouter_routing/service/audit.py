"""The audit trail: every decision in routing.decisions, batch-inserted, idempotent by event id."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from omnirouter_routing.service.records import AuditRow

_INSERT = """
INSERT INTO decisions (
    event_id, type, routing_domain, task_id, agent_id, queue, payload, decided_at,
    causation_id, inbox_partition, inbox_offset
)
SELECT e, t, d, ti, a, q, p::jsonb, at, c, pa, o
FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::timestamptz[], $9::text[], $10::int[], $11::bigint[]
) AS u(e, t, d, ti, a, q, p, at, c, pa, o)
ON CONFLICT (event_id) DO NOTHING
"""


class AuditWriter:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def write(self, rows: Sequence[AuditRow]) -> None:
        """One statement per batch; a replayed decision (same id) is ignored."""
        if not rows:
            return
        async with self._pool.acquire() as conn:
            await conn.execute(
                _INSERT,
                [r.event_id for r in rows],
                [r.type for r in rows],
                [r.routing_domain for r in rows],
                [r.task_id for r in rows],
                [r.agent_id for r in rows],
                [r.queue for r in rows],
                [r.payload_json for r in rows],
                [r.decided_at for r in rows],
                [r.causation_id for r in rows],
                [r.inbox_partition for r in rows],
                [r.inbox_offset for r in rows],
            )

"""Durable deduplication of vendor messages across retries, days and replicas (table ``received``).

A message is *claimed* before it is published and *marked* once the broker acknowledged it. A second
delivery finds the mark and is answered as a duplicate without publishing. A claim that was never
marked and is older than the lease belongs to a replica that died between claim and publish: it is taken
over, so a vendor's retry is never swallowed. If PostgreSQL is unreachable the gateway still publishes
(the event id is derived from the vendor's id, and every consumer deduplicates on it): availability of
intake beats strictness of the first line of dedup."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import asyncpg

from omnirouter_gateway.batching import Coalescer


class Claim(StrEnum):
    NEW = "new"  # ours to publish
    DUPLICATE = "duplicate"  # published before
    INFLIGHT = "inflight"  # another request holds a fresh claim


@dataclass(frozen=True, slots=True)
class Key:
    vendor: str
    dedup_key: str
    event_id: str = ""


class DedupStore:
    def __init__(self, pool: asyncpg.Pool, instance_id: str, lease_s: float) -> None:
        self._pool = pool
        self._instance = instance_id
        self._lease_s = lease_s
        self._claims: Coalescer[Key, Claim] = Coalescer(self._claim_batch, name="dedup-claim")
        self._marks: Coalescer[Key, None] = Coalescer(self._mark_batch, name="dedup-mark")

    def start(self) -> None:
        self._claims.start()
        self._marks.start()

    async def stop(self) -> None:
        await self._claims.stop()
        await self._marks.stop()

    async def claim(self, keys: Sequence[Key]) -> list[Claim]:
        return list(await asyncio.gather(*(self._claims.submit(k) for k in keys)))

    async def mark_published(self, keys: Sequence[Key]) -> None:
        await asyncio.gather(*(self._marks.submit(k) for k in keys))

    async def release(self, keys: Sequence[Key]) -> None:
        """Give up claims whose publish failed, so the vendor's retry is accepted at once."""
        if not keys:
            return
        await self._pool.execute(
            """
            DELETE FROM received r USING unnest($1::text[], $2::text[]) AS k(vendor, dedup_key)
            WHERE r.vendor = k.vendor AND r.dedup_key = k.dedup_key
              AND r.published_at IS NULL AND r.claimed_by = $3
            """,
            [k.vendor for k in keys],
            [k.dedup_key for k in keys],
            self._instance,
        )

    async def published(self, keys: Sequence[Key]) -> dict[Key, bool | None]:
        """For each key: True published, False claimed but not published, None no row (released)."""
        rows = await self._pool.fetch(
            """
            SELECT r.vendor, r.dedup_key, r.published_at IS NOT NULL AS published
            FROM received r JOIN unnest($1::text[], $2::text[]) AS k(vendor, dedup_key)
              ON r.vendor = k.vendor AND r.dedup_key = k.dedup_key
            """,
            [k.vendor for k in keys],
            [k.dedup_key for k in keys],
        )
        found = {(r["vendor"], r["dedup_key"]): bool(r["published"]) for r in rows}
        return {k: found.get((k.vendor, k.dedup_key)) for k in keys}

    async def prune(self, older_than_days: float) -> int:
        """Vendors retry for at most three days (SendGrid); a week of memory is plenty."""
        status = await self._pool.execute(
            "DELETE FROM received WHERE claimed_at < now() - make_interval(secs => $1)",
            older_than_days * 86_400,
        )
        await self._pool.execute(
            "DELETE FROM replay_guard WHERE seen_at < now() - make_interval(secs => $1)",
            older_than_days * 86_400,
        )
        return int(status.split()[-1])

    async def _claim_batch(self, keys: Sequence[Key]) -> list[Claim]:
        # The same message twice in one batch (two concurrent redeliveries): the first claims it, the
        # others wait for it like any in-flight claim. ON CONFLICT may not touch a row twice anyway.
        unique = list(dict.fromkeys((k.vendor, k.dedup_key, k.event_id) for k in keys))
        rows = await self._pool.fetch(
            """
            INSERT INTO received AS r (vendor, dedup_key, event_id, claimed_by)
            SELECT DISTINCT ON (k.vendor, k.dedup_key) k.vendor, k.dedup_key, k.event_id, $4
            FROM unnest($1::text[], $2::text[], $3::text[]) AS k(vendor, dedup_key, event_id)
            ON CONFLICT (vendor, dedup_key) DO UPDATE
              SET claimed_by = EXCLUDED.claimed_by, claimed_at = now()
              WHERE r.published_at IS NULL AND r.claimed_at < now() - make_interval(secs => $5)
            RETURNING r.vendor, r.dedup_key
            """,
            [u[0] for u in unique],
            [u[1] for u in unique],
            [u[2] for u in unique],
            self._instance,
            self._lease_s,
        )
        claimed = {(r["vendor"], r["dedup_key"]) for r in rows}
        rest = [k for k in keys if (k.vendor, k.dedup_key) not in claimed]
        state = await self.published(rest) if rest else {}
        out: list[Claim] = []
        first_seen: set[tuple[str, str]] = set()
        for k in keys:
            ident = (k.vendor, k.dedup_key)
            if ident in claimed and ident not in first_seen:
                first_seen.add(ident)
                out.append(Claim.NEW)
            elif ident in claimed:
                out.append(Claim.INFLIGHT)
            else:
                out.append(Claim.DUPLICATE if state.get(k) else Claim.INFLIGHT)
        return out

    async def _mark_batch(self, keys: Sequence[Key]) -> list[None]:
        await self._pool.execute(
            """
            UPDATE received r SET published_at = now()
            FROM unnest($1::text[], $2::text[]) AS k(vendor, dedup_key)
            WHERE r.vendor = k.vendor AND r.dedup_key = k.dedup_key AND r.published_at IS NULL
            """,
            [k.vendor for k in keys],
            [k.dedup_key for k in keys],
        )
        return [None] * len(keys)

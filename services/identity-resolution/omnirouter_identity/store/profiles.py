"""Reading profiles (aliases resolve to the survivor) and their consent and preferences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from omnirouter_shared.contracts.common import Channel


@dataclass(frozen=True, slots=True)
class Canonical:
    id: str
    status: str  # active | erased


async def canonical(conn: asyncpg.Connection, profile_id: str) -> Canonical | None:
    """The live profile an id stands for now: itself, or the survivor it was merged into."""
    row = await conn.fetchrow(
        """
        SELECT p.id, p.status FROM profiles p
        WHERE p.id = coalesce((SELECT survivor_id FROM profile_aliases WHERE alias_id = $1), $1)
        """,
        profile_id,
    )
    if row is None:
        return None
    return Canonical(row["id"], row["status"])


async def canonical_many(conn: asyncpg.Connection, profile_ids: Sequence[str]) -> dict[str, Canonical]:
    """:func:`canonical` for many ids in one statement; ids with no profile are left out."""
    if not profile_ids:
        return {}
    rows = await conn.fetch(
        """
        SELECT k.asked, p.id, p.status FROM unnest($1::text[]) AS k(asked)
        JOIN profiles p
          ON p.id = coalesce((SELECT survivor_id FROM profile_aliases WHERE alias_id = k.asked), k.asked)
        """,
        list(dict.fromkeys(profile_ids)),
    )
    return {r["asked"]: Canonical(r["id"], r["status"]) for r in rows}


async def describe(conn: asyncpg.Connection, profile_id: str) -> dict[str, Any]:
    profile = await conn.fetchrow(
        "SELECT id, status, ephemeral, display_name, preferred_channel, merge_count, created_at, updated_at"
        " FROM profiles WHERE id = $1",
        profile_id,
    )
    assert profile is not None
    identifiers = await conn.fetch(
        """
        SELECT i.kind, i.namespace, i.value, i.tier, i.shared, i.attributes::text AS attributes,
               i.first_seen_at, i.last_seen_at, i.profile_id = $1 AS owner
        FROM identifiers i
        WHERE i.profile_id = $1
           OR i.id IN (SELECT identifier_id FROM shared_holders WHERE profile_id = $1)
        ORDER BY i.first_seen_at, i.id
        """,
        profile_id,
    )
    aliases = await conn.fetch(
        "SELECT alias_id FROM profile_aliases WHERE survivor_id = $1 ORDER BY created_at, alias_id",
        profile_id,
    )
    return {
        "id": profile["id"],
        "status": profile["status"],
        "ephemeral": profile["ephemeral"],
        "display_name": profile["display_name"],
        "preferred_channel": profile["preferred_channel"],
        "merge_count": profile["merge_count"],
        "created_at": profile["created_at"].isoformat(),
        "updated_at": profile["updated_at"].isoformat(),
        "identifiers": [
            {
                "kind": r["kind"],
                "namespace": r["namespace"] or None,
                "value": r["value"],
                "tier": {1: "typed", 2: "verified", 3: "strong"}[r["tier"]],
                "shared": r["shared"],
                "attributes": orjson.loads(r["attributes"]),
                "first_seen_at": r["first_seen_at"].isoformat(),
                "last_seen_at": r["last_seen_at"].isoformat(),
            }
            for r in identifiers
        ],
        "aliases": [r["alias_id"] for r in aliases],
        "consent": await consent(conn, profile_id),
    }


async def consent(conn: asyncpg.Connection, profile_id: str) -> dict[str, Any]:
    preferred = await conn.fetchval("SELECT preferred_channel FROM profiles WHERE id = $1", profile_id)
    rows = await conn.fetch(
        "SELECT address_key, channel, opted_out, reason, changed_at FROM consents WHERE profile_id = $1"
        " ORDER BY address_key, channel",
        profile_id,
    )
    return {
        "preferred_channel": preferred,
        "addresses": [
            {
                "address": r["address_key"],
                "channel": r["channel"] or None,
                "opted_out": r["opted_out"],
                "reason": r["reason"],
                "changed_at": r["changed_at"].isoformat(),
            }
            for r in rows
        ],
    }


async def set_consent(
    conn: asyncpg.Connection,
    *,
    profile_id: str,
    address_key: str,
    channel: Channel | None,
    opted_out: bool,
    reason: str,
    at: datetime,
) -> bool:
    """Record an opt-out or opt-in; False if it is older than what is recorded (reordered events)."""
    status = await conn.execute(
        """
        INSERT INTO consents (profile_id, address_key, channel, opted_out, reason, changed_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (address_key, channel) DO UPDATE
            SET profile_id = excluded.profile_id, opted_out = excluded.opted_out,
                reason = excluded.reason, changed_at = excluded.changed_at
            WHERE consents.changed_at <= excluded.changed_at
        """,
        profile_id,
        address_key,
        channel.value if channel else "",
        opted_out,
        reason,
        at,
    )
    return bool(status.endswith(" 1"))


async def addresses_of(conn: asyncpg.Connection, profile_id: str) -> list[tuple[str, str, str]]:
    """(kind, namespace, value) of every identifier the profile owns."""
    rows = await conn.fetch(
        "SELECT kind, namespace, value FROM identifiers WHERE profile_id = $1 ORDER BY id", profile_id
    )
    return [(r["kind"], r["namespace"], r["value"]) for r in rows]

"""The cross-channel timeline: one row per source id, newest first per customer."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.identity import TimelineItem

SUMMARY_MAX = 500


@dataclass(frozen=True, slots=True)
class NewEntry:
    entry_id: str
    profile_id: str
    direction: str
    kind: str
    summary: str
    source: str
    occurred_at: datetime
    channel: Channel | None = None
    identifier_id: int | None = None
    routing_domain: str | None = None
    interaction_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def summarise(*parts: str | None) -> str:
    text = " — ".join(p.strip() for p in parts if p and p.strip())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


_INSERT = """
    INSERT INTO timeline (entry_id, profile_id, origin_profile_id, identifier_id, channel, direction,
                          kind, summary, source, routing_domain, interaction_id, data, occurred_at)
    VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)
    ON CONFLICT ON CONSTRAINT timeline_entry_once DO NOTHING
"""


async def record(conn: asyncpg.Connection, entry: NewEntry) -> bool:
    """Insert the entry; False if its source id was already recorded (a redelivery or a replay)."""
    status = await conn.execute(_INSERT, *_args(entry))
    return bool(status.endswith(" 1"))


async def record_many(conn: asyncpg.Connection, entries: Sequence[NewEntry]) -> None:
    """:func:`record` for many entries in one pipelined round trip (an entry already there is skipped)."""
    if entries:
        await conn.executemany(_INSERT, [_args(e) for e in entries])


def _args(entry: NewEntry) -> tuple[Any, ...]:
    return (
        entry.entry_id,
        entry.profile_id,
        entry.identifier_id,
        entry.channel.value if entry.channel else None,
        entry.direction,
        entry.kind,
        entry.summary[:SUMMARY_MAX] or entry.kind,
        entry.source,
        entry.routing_domain,
        entry.interaction_id,
        orjson.dumps(dict(entry.data)).decode(),
        entry.occurred_at,
    )


def _item(r: asyncpg.Record) -> TimelineItem:
    return TimelineItem(
        entry_id=r["entry_id"],
        occurred_at=r["occurred_at"],
        channel=Channel(r["channel"]) if r["channel"] else None,
        direction=r["direction"],
        kind=r["kind"],
        summary=r["summary"],
        source=r["source"],
    )


async def recent(
    conn: asyncpg.Connection, profile_id: str, *, limit: int = 5, exclude_entry: str | None = None
) -> tuple[TimelineItem, ...]:
    rows = await conn.fetch(
        """
        SELECT entry_id, occurred_at, channel, direction, kind, summary, source FROM timeline
        WHERE profile_id = $1 AND entry_id IS DISTINCT FROM $2
        ORDER BY occurred_at DESC, id DESC LIMIT $3
        """,
        profile_id,
        exclude_entry,
        limit,
    )
    return tuple(_item(r) for r in rows)


@dataclass(frozen=True, slots=True)
class Context:
    display_name: str | None
    preferred_channel: Channel | None
    history: tuple[TimelineItem, ...]


# The profile's name (set once, from the first contact that carries one) and its latest history,
# excluding the entry being recorded. Shared by the read-only and the record-then-read statements.
_NAMED_AND_HISTORY = """
        named AS (
            UPDATE profiles SET display_name = $2
            WHERE id = $1 AND display_name IS NULL AND $2::text IS NOT NULL
            RETURNING id
        )
        SELECT coalesce(p.display_name, $2) AS display_name, p.preferred_channel,
               (SELECT count(*) FROM named) AS named,
               t.entry_id, t.occurred_at, t.channel, t.direction, t.kind, t.summary, t.source
        FROM profiles p
        LEFT JOIN LATERAL (
            SELECT entry_id, occurred_at, channel, direction, kind, summary, source FROM timeline
            WHERE profile_id = p.id AND entry_id <> $3
            ORDER BY occurred_at DESC, id DESC LIMIT $4
        ) t ON true
        WHERE p.id = $1
"""

_INSERT_ENTRY = """
    WITH
        ins AS (
            INSERT INTO timeline (entry_id, profile_id, origin_profile_id, identifier_id, channel, direction,
                                  kind, summary, source, routing_domain, interaction_id, data, occurred_at)
            VALUES ($5, $6, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16)
            ON CONFLICT ON CONSTRAINT timeline_entry_once DO NOTHING
        ),"""

_WITH = "WITH"
_CONTEXT = _WITH + _NAMED_AND_HISTORY
_RECORD_AND_CONTEXT = _INSERT_ENTRY + _NAMED_AND_HISTORY


async def context(
    conn: asyncpg.Connection,
    profile_id: str,
    *,
    display_name: str | None,
    exclude_entry: str,
    limit: int,
    record_first: NewEntry | None = None,
) -> Context:
    """What travels with a resolved interaction, in one round trip: the customer's name (kept from the
    first contact that carried one) and preferred channel, and the latest timeline items.

    ``record_first``: an entry to :func:`record` in the same statement (the interaction itself, which the
    history excludes anyway): one round trip per contact fewer."""
    extra = _args(record_first) if record_first is not None else ()
    rows = await conn.fetch(
        _RECORD_AND_CONTEXT if record_first is not None else _CONTEXT,
        profile_id,
        display_name,
        exclude_entry,
        limit,
        *extra,
    )
    first = rows[0]
    return Context(
        display_name=first["display_name"],
        preferred_channel=Channel(first["preferred_channel"]) if first["preferred_channel"] else None,
        history=tuple(_item(r) for r in rows if r["entry_id"] is not None),
    )


@dataclass(frozen=True, slots=True)
class Page:
    items: tuple[TimelineItem, ...]
    next_cursor: str | None


def encode_cursor(occurred_at: datetime, row_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([occurred_at.isoformat(), row_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Raises ValueError on a cursor this service did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = orjson.loads(raw)
        return datetime.fromisoformat(at), int(row_id)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError("malformed cursor") from exc


async def page(
    conn: asyncpg.Connection,
    profile_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    channel: Channel | None = None,
) -> Page:
    after = decode_cursor(cursor) if cursor else None
    rows = await conn.fetch(
        """
        SELECT id, entry_id, occurred_at, channel, direction, kind, summary, source FROM timeline
        WHERE profile_id = $1
          AND ($2::text IS NULL OR channel = $2)
          AND ($3::timestamptz IS NULL OR (occurred_at, id) < ($3, $4))
        ORDER BY occurred_at DESC, id DESC LIMIT $5
        """,
        profile_id,
        channel.value if channel else None,
        after[0] if after else None,
        after[1] if after else 0,
        limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1]["occurred_at"], rows[-1]["id"]) if more and rows else None
    return Page(tuple(_item(r) for r in rows), nxt)

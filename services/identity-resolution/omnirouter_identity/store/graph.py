"""Reading the graph around an interaction and applying the resolver's decisions to it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import orjson

from omnirouter_identity import metrics
from omnirouter_identity.core.decisions import (
    AddSharedHolder,
    CreateProfile,
    Decision,
    Dropped,
    LinkIdentifier,
    MergeProfiles,
    RecordTypedClaim,
    ReportConflict,
    Suggest,
)
from omnirouter_identity.core.identifiers import Claim, IdentifierKey, Tier
from omnirouter_identity.core.resolver import RULE_VERSION
from omnirouter_identity.core.view import GraphView, HeldIdentifier, ProfileFacts, VariantHolder
from omnirouter_identity.store import audit
from omnirouter_identity.store.tx import StaleView
from omnirouter_shared.contracts.common import AddressKind

_MERGE_NS = uuid.UUID("0d7c6f0e-5b0a-4f43-9d39-6a1e8e2b7c51")


@dataclass(frozen=True, slots=True)
class Observation:
    """Where a set of claims came from, for the evidence edges and the audit trail."""

    source: str
    observed_at: datetime
    interaction_id: str | None = None
    decided_by: str = "resolver"


@dataclass(frozen=True, slots=True)
class AppliedMerge:
    merge_id: str
    survivor_id: str
    absorbed_id: str
    reason: str


@dataclass
class Applied:
    merges: list[AppliedMerge] = field(default_factory=list)
    #: Profiles whose identifiers changed: the hot-identity cache drops them after the commit.
    touched_profiles: set[str] = field(default_factory=set)
    identifier_ids: dict[IdentifierKey, int] = field(default_factory=dict)


def merge_id_for(source_id: str, absorbed_id: str) -> str:
    """Deterministic: a replayed or concurrently decided merge gets the same id, and routing's fold of
    ``CustomersMerged`` is idempotent on it."""
    return str(uuid.uuid5(_MERGE_NS, f"{source_id}:{absorbed_id}"))


def _key_arrays(keys: Sequence[IdentifierKey]) -> tuple[list[str], list[str], list[str]]:
    return [k.kind.value for k in keys], [k.namespace for k in keys], [k.value for k in keys]


async def load_view(
    conn: asyncpg.Connection, claims: Sequence[Claim], *, occurred_at: datetime, suppress_all: bool
) -> tuple[GraphView, frozenset[IdentifierKey]]:
    """The view for the resolver, and the keys erased *after* the interaction happened: an event that
    carries only those is a replay from before the erasure and must leave no trace."""
    keys = list(dict.fromkeys(c.key for c in claims))
    if not keys:
        return GraphView(), frozenset()
    kinds, namespaces, values = _key_arrays(keys)
    variant_keys = sorted({c.variant_key for c in claims if c.variant_key})
    rows = await conn.fetch(
        """
        SELECT i.id, i.kind, i.namespace, i.value, i.profile_id, i.shared, i.variant_key,
               coalesce((SELECT array_agg(h.profile_id ORDER BY h.last_seen_at DESC, h.profile_id)
                         FROM shared_holders h WHERE h.identifier_id = i.id), '{}') AS holders
        FROM identifiers i
        JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(kind, namespace, value)
          ON i.kind = k.kind AND i.namespace = k.namespace AND i.value = k.value
        UNION ALL
        SELECT i.id, i.kind, i.namespace, i.value, i.profile_id, i.shared, i.variant_key, '{}'
        FROM identifiers i WHERE i.variant_key = ANY($4::text[])
        """,
        kinds,
        namespaces,
        values,
        variant_keys,
    )
    wanted = set(keys)
    held: dict[IdentifierKey, HeldIdentifier] = {}
    variants: dict[str, list[VariantHolder]] = {}
    profile_ids: set[str] = set()
    for r in rows:
        key = IdentifierKey(AddressKind(r["kind"]), r["namespace"], r["value"])
        if key in wanted and key not in held:
            held[key] = HeldIdentifier(key, r["profile_id"], r["shared"], tuple(r["holders"]))
            profile_ids |= set(held[key].all_holders)
        if r["variant_key"] in variant_keys:
            variants.setdefault(r["variant_key"], []).append(VariantHolder(key, r["profile_id"]))
            profile_ids.add(r["profile_id"])
    profiles = await load_facts(conn, sorted(profile_ids))
    hashes = {k.suppression_hash(): k for k in keys}
    suppressed_rows = await conn.fetch(
        "SELECT hash, erased_at FROM suppressions WHERE hash = ANY($1::text[])", list(hashes)
    )
    replayed = frozenset(hashes[r["hash"]] for r in suppressed_rows if r["erased_at"] >= occurred_at)
    suppressed = frozenset(hashes[r["hash"]] for r in suppressed_rows) if suppress_all else replayed
    view = GraphView(
        held=held,
        profiles=profiles,
        variants={vk: tuple(v) for vk, v in variants.items()},
        suppressed=suppressed,
    )
    return view, replayed


async def load_facts(conn: asyncpg.Connection, profile_ids: Sequence[str]) -> dict[str, ProfileFacts]:
    if not profile_ids:
        return {}
    rows = await conn.fetch(
        """
        SELECT p.id, p.created_at, p.merge_count,
               coalesce(array_agg(i.kind) FILTER (WHERE i.id IS NOT NULL), '{}') AS kinds,
               coalesce(array_agg(i.value) FILTER (WHERE i.id IS NOT NULL), '{}') AS ivalues,
               coalesce(array_agg(i.tier) FILTER (WHERE i.id IS NOT NULL), '{}') AS tiers
        FROM profiles p LEFT JOIN identifiers i ON i.profile_id = p.id
        WHERE p.id = ANY($1::text[])
        GROUP BY p.id
        """,
        list(profile_ids),
    )
    facts: dict[str, ProfileFacts] = {}
    for r in rows:
        counts: dict[AddressKind, int] = {}
        strong: dict[AddressKind, str] = {}
        emails: set[str] = set()
        for kind_text, value, tier in zip(r["kinds"], r["ivalues"], r["tiers"], strict=True):
            kind = AddressKind(kind_text)
            counts[kind] = counts.get(kind, 0) + 1
            if tier == Tier.STRONG:
                strong[kind] = value
            if kind is AddressKind.EMAIL and tier >= Tier.VERIFIED:
                emails.add(value)
        facts[r["id"]] = ProfileFacts(
            id=r["id"],
            created_at=r["created_at"],
            strong=strong,
            verified_emails=frozenset(emails),
            identifier_counts=counts,
            merge_count=r["merge_count"],
        )
    return facts


async def apply(
    conn: asyncpg.Connection, decisions: Sequence[Decision], obs: Observation, *, source_id: str
) -> Applied:
    """Apply decisions in order. Raises :class:`StaleView` if an identifier moved since the view was read."""
    out = Applied()
    for d in decisions:
        metrics.DECISIONS.labels(type(d).__name__).inc()
        if isinstance(d, CreateProfile):
            await conn.execute(
                "INSERT INTO profiles (id, ephemeral, created_at, updated_at) VALUES ($1, $2, $3, $3)",
                d.profile_id,
                d.ephemeral,
                obs.observed_at,
            )
            out.touched_profiles.add(d.profile_id)
        elif isinstance(d, MergeProfiles):
            merge_id = merge_id_for(source_id, d.absorbed_id)
            await merge_profiles(conn, d, merge_id=merge_id, obs=obs)
            out.merges.append(AppliedMerge(merge_id, d.survivor_id, d.absorbed_id, d.reason))
            out.touched_profiles |= {d.survivor_id, d.absorbed_id}
        elif isinstance(d, LinkIdentifier):
            out.identifier_ids[d.claim.key] = await link_identifier(conn, d.profile_id, d.claim, obs)
            out.touched_profiles.add(d.profile_id)
        elif isinstance(d, AddSharedHolder):
            out.identifier_ids[d.key] = await add_shared_holder(conn, d.key, d.profile_id, obs)
            out.touched_profiles.add(d.profile_id)
        elif isinstance(d, RecordTypedClaim):
            await conn.execute(
                """
                INSERT INTO link_evidence (identifier_id, profile_id, claimed_key, source, verified, tier,
                                           interaction_id, observed_at)
                VALUES (NULL, $1, $2, $3, false, $4, $5, $6) ON CONFLICT DO NOTHING
                """,
                d.profile_id,
                d.claim.key.text,
                obs.source,
                int(d.claim.tier),
                obs.interaction_id,
                obs.observed_at,
            )
        elif isinstance(d, Suggest):
            await conn.execute(
                """
                INSERT INTO suggestions (profile_id, candidate_id, reason, identifier_kind, interaction_id,
                                         created_at)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
                """,
                d.profile_id,
                d.candidate_id,
                d.reason.value,
                d.key.kind.value,
                obs.interaction_id,
                obs.observed_at,
            )
        elif isinstance(d, ReportConflict):
            await conn.execute(
                """
                INSERT INTO conflicts (kind, profile_id, other_profile_id, identifier_kind, detail,
                                       interaction_id, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING
                """,
                d.kind.value,
                d.profile_id,
                d.other_profile_id,
                d.key.kind.value,
                d.detail,
                obs.interaction_id,
                obs.observed_at,
            )
        elif isinstance(d, Dropped):
            metrics.DROPPED.labels(d.reason.value).inc()
    return out


async def link_identifier(conn: asyncpg.Connection, profile_id: str, claim: Claim, obs: Observation) -> int:
    row = await conn.fetchrow(
        """
        INSERT INTO identifiers (kind, namespace, value, profile_id, tier, variant_key, attributes,
                                 first_seen_at, last_seen_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $8)
        ON CONFLICT ON CONSTRAINT identifiers_live_unique DO UPDATE
            SET last_seen_at = greatest(identifiers.last_seen_at, excluded.last_seen_at),
                tier = greatest(identifiers.tier, excluded.tier)
            WHERE identifiers.profile_id = excluded.profile_id
        RETURNING id, (xmax = 0) AS inserted, tier
        """,
        claim.key.kind.value,
        claim.key.namespace,
        claim.key.value,
        profile_id,
        int(claim.tier),
        claim.variant_key,
        orjson.dumps(dict(claim.attributes)).decode(),
        obs.observed_at,
    )
    if row is None:
        raise StaleView(f"{claim.key.kind.value} identifier is now held by another profile")
    if row["inserted"]:
        # Evidence is kept when a link is made, not on every sighting: a returning customer costs one
        # statement, and a split only needs to know how each identifier arrived.
        await _evidence(conn, row["id"], profile_id, claim.tier, obs)
    return int(row["id"])


async def _evidence(
    conn: asyncpg.Connection, identifier_id: int, profile_id: str, tier: Tier, obs: Observation
) -> None:
    await conn.execute(
        """
        INSERT INTO link_evidence (identifier_id, profile_id, source, verified, tier, interaction_id,
                                   observed_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING
        """,
        identifier_id,
        profile_id,
        obs.source,
        tier >= Tier.VERIFIED,
        int(tier),
        obs.interaction_id,
        obs.observed_at,
    )


async def add_shared_holder(
    conn: asyncpg.Connection, key: IdentifierKey, profile_id: str, obs: Observation
) -> int:
    row = await conn.fetchrow(
        """
        UPDATE identifiers SET shared = true, last_seen_at = greatest(last_seen_at, $4)
        WHERE kind = $1 AND namespace = $2 AND value = $3
        RETURNING id, profile_id
        """,
        key.kind.value,
        key.namespace,
        key.value,
        obs.observed_at,
    )
    if row is None:
        raise StaleView("shared identifier disappeared")
    # The owner is a holder too: a shared identifier lists everyone who may use it.
    await conn.execute(
        """
        INSERT INTO shared_holders (identifier_id, profile_id, last_seen_at)
        SELECT $1, holder, $3 FROM (SELECT DISTINCT unnest($2::text[]) AS holder) AS h
        ON CONFLICT (identifier_id, profile_id) DO UPDATE
            SET last_seen_at = greatest(shared_holders.last_seen_at, excluded.last_seen_at)
        """,
        row["id"],
        [row["profile_id"], profile_id],
        obs.observed_at,
    )
    await _evidence(conn, row["id"], profile_id, Tier.VERIFIED, obs)
    return int(row["id"])


async def touch_cached(
    conn: asyncpg.Connection, keys: Sequence[IdentifierKey], profile_id: str, at: datetime
) -> dict[IdentifierKey, int] | None:
    """The fast path: confirm every key is still owned, unshared, by ``profile_id`` and mark it seen.
    None if any is not (another instance merged or erased it): the caller takes the slow path."""
    kinds, namespaces, values = _key_arrays(keys)
    # Read under SERIALIZABLE (a concurrent merge of these rows then conflicts and retries); refresh
    # last_seen_at at most once a minute so a chatty customer does not rewrite the same row per message.
    rows = await conn.fetch(
        """
        WITH found AS (
            SELECT i.id, i.kind, i.namespace, i.value, i.last_seen_at FROM identifiers i
            JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(kind, namespace, value)
              ON i.kind = k.kind AND i.namespace = k.namespace AND i.value = k.value
            WHERE i.profile_id = $4 AND NOT i.shared
        ), touched AS (
            UPDATE identifiers SET last_seen_at = $5::timestamptz
            WHERE id IN (SELECT id FROM found WHERE last_seen_at < $5::timestamptz - interval '60 seconds')
            RETURNING id
        )
        SELECT id, kind, namespace, value, (SELECT count(*) FROM touched) AS touched FROM found
        """,
        kinds,
        namespaces,
        values,
        profile_id,
        at,
    )
    if len(rows) != len(keys):
        return None
    return {IdentifierKey(AddressKind(r["kind"]), r["namespace"], r["value"]): r["id"] for r in rows}


async def merge_profiles(
    conn: asyncpg.Connection, d: MergeProfiles, *, merge_id: str, obs: Observation
) -> None:
    # Lock both rows in a fixed order (by id) so two transactions merging overlapping sets cannot
    # deadlock, and re-check under the lock that both are still live.
    rows = await conn.fetch(
        "SELECT id, status, merge_count FROM profiles WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
        [d.survivor_id, d.absorbed_id],
    )
    status = {r["id"]: r for r in rows}
    if any(status.get(p) is None or status[p]["status"] != "active" for p in (d.survivor_id, d.absorbed_id)):
        raise StaleView("a profile to merge is no longer active")
    moved = await conn.fetch(
        "UPDATE identifiers SET profile_id = $1 WHERE profile_id = $2 RETURNING id",
        d.survivor_id,
        d.absorbed_id,
    )
    moved_shared = await conn.fetch(
        "DELETE FROM shared_holders WHERE profile_id = $1 RETURNING identifier_id, last_seen_at",
        d.absorbed_id,
    )
    if moved_shared:
        await conn.executemany(
            """
            INSERT INTO shared_holders (identifier_id, profile_id, last_seen_at) VALUES ($1, $2, $3)
            ON CONFLICT (identifier_id, profile_id) DO UPDATE
                SET last_seen_at = greatest(shared_holders.last_seen_at, excluded.last_seen_at)
            """,
            [(r["identifier_id"], d.survivor_id, r["last_seen_at"]) for r in moved_shared],
        )
    await conn.execute(
        "UPDATE timeline SET profile_id = $1 WHERE profile_id = $2", d.survivor_id, d.absorbed_id
    )
    await conn.execute(
        """
        INSERT INTO consents (profile_id, address_key, channel, opted_out, reason, changed_at)
        SELECT $1, address_key, channel, opted_out, reason, changed_at FROM consents WHERE profile_id = $2
        ON CONFLICT (address_key, channel) DO UPDATE SET profile_id = excluded.profile_id
        """,
        d.survivor_id,
        d.absorbed_id,
    )
    await _repoint_suggestions(conn, d.survivor_id, d.absorbed_id)
    await conn.execute(
        "UPDATE profiles SET status = 'merged', updated_at = $2 WHERE id = $1", d.absorbed_id, obs.observed_at
    )
    await conn.execute(
        "UPDATE profiles SET merge_count = merge_count + $2 + 1, updated_at = $3 WHERE id = $1",
        d.survivor_id,
        status[d.absorbed_id]["merge_count"],
        obs.observed_at,
    )
    # Path compression: every alias points straight at the live survivor, so a lookup is one hop.
    await conn.execute(
        "UPDATE profile_aliases SET survivor_id = $1 WHERE survivor_id = $2", d.survivor_id, d.absorbed_id
    )
    await conn.execute(
        "INSERT INTO profile_aliases (alias_id, survivor_id, merge_id, created_at) VALUES ($1, $2, $3, $4)",
        d.absorbed_id,
        d.survivor_id,
        merge_id,
        obs.observed_at,
    )
    evidence_ids = await conn.fetchval(
        """
        SELECT coalesce(array_agg(i.id), '{}') FROM identifiers i
        JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(kind, namespace, value)
          ON i.kind = k.kind AND i.namespace = k.namespace AND i.value = k.value
        """,
        *_key_arrays(d.evidence),
    )
    await conn.execute(
        """
        INSERT INTO merges (id, survivor_id, absorbed_id, reason, rule_version, decided_by,
                            evidence_identifier_ids, moved_identifier_ids, moved_shared_identifier_ids,
                            interaction_id, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        """,
        merge_id,
        d.survivor_id,
        d.absorbed_id,
        d.reason,
        RULE_VERSION,
        obs.decided_by,
        list(evidence_ids),
        [r["id"] for r in moved],
        [r["identifier_id"] for r in moved_shared],
        obs.interaction_id,
        obs.observed_at,
    )
    await audit.record(
        conn,
        actor=obs.decided_by,
        action="merge",
        profile_id=d.survivor_id,
        others=[d.absorbed_id],
        detail={
            "merge_id": merge_id,
            "reason": d.reason,
            "evidence_kinds": sorted({k.kind.value for k in d.evidence}),
            "moved_identifiers": len(moved),
        },
        at=obs.observed_at,
    )


async def _repoint_suggestions(conn: asyncpg.Connection, survivor: str, absorbed: str) -> None:
    rows = await conn.fetch(
        """
        DELETE FROM suggestions WHERE status = 'open' AND (profile_id = $1 OR candidate_id = $1)
        RETURNING profile_id, candidate_id, reason, identifier_kind, interaction_id, created_at
        """,
        absorbed,
    )
    keep = []
    for r in rows:
        a = survivor if r["profile_id"] == absorbed else r["profile_id"]
        b = survivor if r["candidate_id"] == absorbed else r["candidate_id"]
        if a != b:
            keep.append((a, b, r["reason"], r["identifier_kind"], r["interaction_id"], r["created_at"]))
    if keep:
        await conn.executemany(
            """
            INSERT INTO suggestions (profile_id, candidate_id, reason, identifier_kind, interaction_id,
                                     created_at)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
            """,
            keep,
        )

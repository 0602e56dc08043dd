"""Operations on whole profiles: undoing a merge, accepting a suggestion, GDPR erasure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from omnirouter_identity.core.decisions import MergeProfiles
from omnirouter_identity.core.identifiers import IdentifierKey
from omnirouter_identity.core.resolver import RULE_VERSION
from omnirouter_identity.store import audit
from omnirouter_identity.store.graph import AppliedMerge, Observation, load_facts, merge_profiles
from omnirouter_shared.contracts.common import AddressKind
from omnirouter_shared.contracts.identity import consent_key

_SPLIT_NS = uuid.UUID("8b1f1e63-3f0c-4b8e-a7f4-51a0c1f7e2d4")


class OperationRefused(ValueError):
    """The operation is not allowed in the profile's current state; ``code`` is the API error code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True, slots=True)
class SplitResult:
    split_id: str
    survivor_id: str
    restored_id: str
    identifier_keys: tuple[str, ...]
    routing_domains: tuple[str, ...]


async def split(
    conn: asyncpg.Connection, survivor_id: str, restored_id: str, *, actor: str, at: datetime
) -> SplitResult:
    """Undo the merge of ``restored_id`` into ``survivor_id`` from the stored evidence: the identifiers
    it brought come back, with the timeline entries recorded on it or through those identifiers since."""
    merge = await conn.fetchrow(
        """
        SELECT id, moved_identifier_ids, moved_shared_identifier_ids FROM merges
        WHERE absorbed_id = $1 AND split_at IS NULL ORDER BY created_at DESC LIMIT 1 FOR UPDATE
        """,
        restored_id,
    )
    alias = await conn.fetchval("SELECT survivor_id FROM profile_aliases WHERE alias_id = $1", restored_id)
    if merge is None or alias != survivor_id:
        raise OperationRefused("not_merged", f"profile {restored_id} is not merged into {survivor_id}")
    await conn.fetch(
        "SELECT id FROM profiles WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
        [survivor_id, restored_id],
    )
    moved = await conn.fetch(
        """
        UPDATE identifiers SET profile_id = $1
        WHERE id = ANY($2::bigint[]) AND profile_id = $3
        RETURNING id, kind, namespace, value
        """,
        restored_id,
        list(merge["moved_identifier_ids"]),
        survivor_id,
    )
    await conn.execute(
        """
        INSERT INTO shared_holders (identifier_id, profile_id, last_seen_at)
        SELECT id, $1, $3 FROM identifiers WHERE id = ANY($2::bigint[])
        ON CONFLICT DO NOTHING
        """,
        restored_id,
        list(merge["moved_shared_identifier_ids"]),
        at,
    )
    moved_ids = [r["id"] for r in moved]
    # Later contacts follow the identifier they used: entries recorded through a restored identifier
    # go back with it, as do the entries the restored profile had before the merge.
    await conn.execute(
        """
        UPDATE timeline SET profile_id = $1
        WHERE profile_id = $2 AND (origin_profile_id = $1 OR identifier_id = ANY($3::bigint[]))
        """,
        restored_id,
        survivor_id,
        moved_ids,
    )
    await conn.execute(
        """
        UPDATE consents c SET profile_id = $1 FROM identifiers i
        WHERE c.profile_id = $2 AND i.id = ANY($3::bigint[])
          AND c.address_key = i.kind || ':' || CASE WHEN i.namespace = '' THEN '' ELSE i.namespace || '/' END || i.value
        """,
        restored_id,
        survivor_id,
        moved_ids,
    )
    await conn.execute("DELETE FROM profile_aliases WHERE alias_id = $1", restored_id)
    # Profiles merged into the restored one before it was absorbed follow it back.
    await conn.execute(
        """
        UPDATE profile_aliases a SET survivor_id = $1 FROM merges m
        WHERE a.merge_id = m.id AND m.survivor_id = $1 AND m.split_at IS NULL AND a.survivor_id = $2
        """,
        restored_id,
        survivor_id,
    )
    await conn.execute(
        "UPDATE profiles SET status = 'active', updated_at = $2 WHERE id = $1", restored_id, at
    )
    await conn.execute(
        "UPDATE profiles SET merge_count = greatest(merge_count - 1, 0), updated_at = $2 WHERE id = $1",
        survivor_id,
        at,
    )
    split_id = str(uuid.uuid5(_SPLIT_NS, merge["id"]))
    await conn.execute(
        "UPDATE merges SET split_at = $2, split_id = $3 WHERE id = $1", merge["id"], at, split_id
    )
    await audit.record(
        conn,
        actor=actor,
        action="split",
        profile_id=survivor_id,
        others=[restored_id],
        detail={"merge_id": merge["id"], "split_id": split_id, "restored_identifiers": len(moved_ids)},
        at=at,
    )
    keys = tuple(IdentifierKey(AddressKind(r["kind"]), r["namespace"], r["value"]).text for r in moved)
    return SplitResult(split_id, survivor_id, restored_id, keys, await routing_domains(conn, [survivor_id]))


async def accept_suggestion(
    conn: asyncpg.Connection, suggestion_id: int, *, actor: str, at: datetime
) -> AppliedMerge:
    """An agent confirmed two profiles are one person: merge them (oldest survives), audited."""
    row = await conn.fetchrow(
        "SELECT profile_id, candidate_id, reason, status FROM suggestions WHERE id = $1 FOR UPDATE",
        suggestion_id,
    )
    if row is None:
        raise OperationRefused("not_found", f"no suggestion {suggestion_id}")
    if row["status"] != "open":
        raise OperationRefused("not_open", f"suggestion {suggestion_id} is already {row['status']}")
    ids = []
    for pid in (row["profile_id"], row["candidate_id"]):
        live = await conn.fetchrow(
            "SELECT p.id, p.status FROM profiles p WHERE p.id = coalesce("
            "(SELECT survivor_id FROM profile_aliases WHERE alias_id = $1), $1)",
            pid,
        )
        if live is None or live["status"] != "active":
            raise OperationRefused("not_active", "one of the profiles no longer exists")
        ids.append(live["id"])
    if ids[0] == ids[1]:
        raise OperationRefused("already_merged", "the two profiles are already one")
    facts = await load_facts(conn, ids)
    a, b = facts[ids[0]], facts[ids[1]]
    if any(b.strong.get(kind, value) != value for kind, value in a.strong.items()):
        raise OperationRefused(
            "strong_id_conflict", "the profiles hold different strong ids of the same kind"
        )
    survivor, absorbed = sorted((a, b), key=lambda f: f.age_key)
    merge_id = str(uuid.uuid5(_SPLIT_NS, f"suggestion:{suggestion_id}"))
    reason = f"{RULE_VERSION}: suggestion {row['reason']} confirmed by {actor}"
    await merge_profiles(
        conn,
        MergeProfiles(survivor.id, absorbed.id, reason, ()),
        merge_id=merge_id,
        obs=Observation(source="api", observed_at=at, decided_by=actor),
    )
    await conn.execute(
        "UPDATE suggestions SET status = 'accepted', decided_at = $2 WHERE id = $1", suggestion_id, at
    )
    return AppliedMerge(merge_id, survivor.id, absorbed.id, reason)


async def dismiss_suggestion(conn: asyncpg.Connection, suggestion_id: int, *, at: datetime) -> None:
    status = await conn.execute(
        "UPDATE suggestions SET status = 'dismissed', decided_at = $2 WHERE id = $1 AND status = 'open'",
        suggestion_id,
        at,
    )
    if not status.endswith(" 1"):
        raise OperationRefused("not_open", f"no open suggestion {suggestion_id}")


@dataclass(frozen=True, slots=True)
class ErasureResult:
    profile_id: str
    alias_ids: tuple[str, ...]
    consent_keys: tuple[str, ...]
    routing_domains: tuple[str, ...]
    identifiers_erased: int


async def erase(conn: asyncpg.Connection, profile_id: str, *, actor: str, at: datetime) -> ErasureResult:
    """GDPR erasure of a live profile and every profile merged into it: identifiers, evidence, timeline,
    consent and suggestions go; hashes of the identifiers stay, so a replay cannot bring them back."""
    aliases = [
        r["alias_id"]
        for r in await conn.fetch("SELECT alias_id FROM profile_aliases WHERE survivor_id = $1", profile_id)
    ]
    everyone = [profile_id, *aliases]
    await conn.fetch("SELECT id FROM profiles WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", everyone)
    domains = await routing_domains(conn, everyone)
    # A shared number (the family phone) is also the other holders' identifier: it passes to the
    # holder who used it last instead of being erased from under them.
    await conn.execute(
        """
        UPDATE identifiers i SET profile_id = h.profile_id
        FROM (SELECT DISTINCT ON (identifier_id) identifier_id, profile_id FROM shared_holders
              WHERE NOT profile_id = ANY($2::text[])
              ORDER BY identifier_id, last_seen_at DESC, profile_id) AS h
        WHERE i.id = h.identifier_id AND i.profile_id = $1 AND i.shared
        """,
        profile_id,
        everyone,
    )
    idents = await conn.fetch(
        "SELECT id, kind, namespace, value FROM identifiers WHERE profile_id = $1", profile_id
    )
    hashes = [
        IdentifierKey(AddressKind(r["kind"]), r["namespace"], r["value"]).suppression_hash() for r in idents
    ]
    if hashes:
        await conn.execute(
            """
            INSERT INTO suppressions (hash, erased_at) SELECT unnest($1::text[]), $2
            ON CONFLICT (hash) DO UPDATE SET erased_at = greatest(suppressions.erased_at, excluded.erased_at)
            """,
            hashes,
            at,
        )
    consent_keys = [
        consent_key(r["address_key"], r["channel"] or None)
        for r in await conn.fetch(
            "DELETE FROM consents WHERE profile_id = ANY($1::text[]) RETURNING address_key, channel",
            everyone,
        )
    ]
    await conn.execute("DELETE FROM shared_holders WHERE profile_id = ANY($1::text[])", everyone)
    await conn.execute("DELETE FROM link_evidence WHERE profile_id = ANY($1::text[])", everyone)
    await conn.execute("DELETE FROM identifiers WHERE profile_id = $1", profile_id)
    await conn.execute("DELETE FROM timeline WHERE profile_id = ANY($1::text[])", everyone)
    await conn.execute(
        "DELETE FROM suggestions WHERE profile_id = ANY($1::text[]) OR candidate_id = ANY($1::text[])",
        everyone,
    )
    await conn.execute(
        "UPDATE conflicts SET detail = 'erased' WHERE profile_id = ANY($1::text[]) OR other_profile_id = ANY($1::text[])",
        everyone,
    )
    await conn.execute(
        """
        UPDATE profiles SET status = 'erased', display_name = NULL, preferred_channel = NULL, updated_at = $2
        WHERE id = ANY($1::text[])
        """,
        everyone,
        at,
    )
    await audit.record(
        conn,
        actor=actor,
        action="erase",
        profile_id=profile_id,
        others=aliases,
        detail={"identifiers": len(idents), "consents": len(consent_keys)},
        at=at,
    )
    return ErasureResult(profile_id, tuple(aliases), tuple(consent_keys), domains, len(idents))


async def routing_domains(conn: asyncpg.Connection, profile_ids: list[str]) -> tuple[str, ...]:
    """The routing domains the customers' interactions went to: where routing holds their work."""
    rows = await conn.fetch(
        "SELECT DISTINCT routing_domain FROM timeline WHERE profile_id = ANY($1::text[])"
        " AND routing_domain IS NOT NULL ORDER BY 1",
        profile_ids,
    )
    return tuple(r["routing_domain"] for r in rows) or ("default",)

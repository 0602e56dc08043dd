"""The ten hard cases of identity-anchors.md, each through the real PostgreSQL store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from omnirouter_identity.core.identifiers import IdentifierKey
from omnirouter_identity.resolution import Outcome, Resolver
from omnirouter_identity.store import lifecycle, profiles, timeline
from omnirouter_identity.store.graph import AppliedMerge, Observation
from omnirouter_identity.store.tx import serializable
from omnirouter_shared.contracts.common import Address
from omnirouter_shared.db import create_pool
from tests.identity.conftest import Observe, pid
from tests.identity.helpers import POLICY, addr

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def owner(pool: asyncpg.Pool, key: str) -> str | None:
    k = IdentifierKey.parse(key)
    value: str | None = await pool.fetchval(
        "SELECT profile_id FROM identifiers WHERE kind = $1 AND namespace = $2 AND value = $3",
        k.kind.value,
        k.namespace,
        k.value,
    )
    return value


async def canonical(pool: asyncpg.Pool, pid: str) -> str:
    async with pool.acquire() as conn:
        found = await profiles.canonical(conn, pid)
    assert found is not None
    return found.id


async def test_case_1_family_phone(observe: Observe, pool: asyncpg.Pool) -> None:
    p1 = pid(await observe(addr("phone", "+447700900123"), addr("email", "mum@x.io")))
    p2 = pid(await observe(addr("email", "son@y.io")))
    sms = await observe(addr("phone", "+447700900123"))
    assert sms.profile_id == p1
    chat = await observe(addr("webchat", "visitor-9"), addr("email", "son@y.io", verified=False))
    assert chat.merges == []
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM suggestions WHERE candidate_id = $1 AND reason = 'typed_match'", p2
        )
        == 1
    )
    assert await owner(pool, "email:son@y.io") == p2  # a typed value moved nothing
    verified = await observe(addr("phone", "+447700900123"), addr("email", "son@y.io"))
    assert verified.profile_id == p2 and verified.merges == []
    shared = await pool.fetchrow("SELECT id, shared FROM identifiers WHERE value = '+447700900123'")
    assert shared["shared"]
    holders = await pool.fetch("SELECT profile_id FROM shared_holders WHERE identifier_id = $1", shared["id"])
    assert {r["profile_id"] for r in holders} == {p1, p2}


async def test_case_2_email_then_call(observe: Observe) -> None:
    email = await observe(addr("email", "a@x.io"), addr("phone", "+16502532222"), at=T0)
    call = await observe(addr("phone", "(650) 253-2222"), at=T0 + timedelta(minutes=20))
    assert call.profile_id == email.profile_id and not call.is_new and call.merges == []


async def test_case_3_kiosk_cookie(observe: Observe, pool: asyncpg.Pool) -> None:
    p1 = pid(await observe(addr("webchat", "c1"), addr("email", "e1@x.io")))
    p2 = pid(await observe(addr("email", "e2@x.io")))
    r = await observe(addr("webchat", "c1"), addr("email", "e2@x.io"))
    assert r.profile_id == p2 and r.merges == []
    assert await owner(pool, "webchat:c1") == p1


async def test_case_4_junk_ids_give_ephemeral_profiles(observe: Observe, pool: asyncpg.Pool) -> None:
    junk = [
        addr("phone", "anonymous"),
        addr("phone", "+000000"),
        addr("email", "test@test.com"),
        addr("webchat", "null"),
        addr("phone", "+1 800 555 0199"),  # our own DID
    ]
    seen = set()
    for a in junk:
        r = await observe(a)
        assert r.is_new and r.profile_id not in seen
        seen.add(r.profile_id)
    assert await pool.fetchval("SELECT count(*) FROM identifiers") == 0
    assert await pool.fetchval("SELECT count(*) FROM profiles WHERE ephemeral") == len(junk)


async def test_case_5_variants(observe: Observe, pool: asyncpg.Pool) -> None:
    ext = await observe(addr("phone", "+1 650-253-2222 ext 45"))
    row = await pool.fetchrow(
        "SELECT value, attributes::text AS a FROM identifiers WHERE profile_id = $1", ext.profile_id
    )
    assert row["value"] == "+16502532222" and '"extension": "45"' in row["a"]

    gb = Resolver(POLICY.__class__(default_region="GB"))
    de1 = await observe(addr("phone", "0049 30 1234567"), using=gb)
    de2 = await observe(addr("phone", "+49 030 1234567"), using=gb)
    assert de1.profile_id == de2.profile_id

    g1 = await observe(addr("email", "J.Doe+x@GMAIL.com"))
    g2 = await observe(addr("email", "jdoe@gmail.com"))
    assert g1.profile_id != g2.profile_id and g2.merges == []
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM suggestions WHERE reason = 'variant' AND candidate_id = $1", g1.profile_id
        )
        == 1
    )
    o1 = await observe(addr("email", "j.doe@outlook.com"))
    o2 = await observe(addr("email", "jdoe@outlook.com"))
    assert o1.profile_id != o2.profile_id
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM suggestions WHERE $1 IN (profile_id, candidate_id)", o2.profile_id
        )
        == 0
    )


async def test_case_6_brazil_ninth_digit(observe: Observe, pool: asyncpg.Pool) -> None:
    crm = await observe(addr("crm", "C-55"), addr("phone", "+5511988887777"))
    wa = await observe(addr("whatsapp", "551188887777"))
    assert wa.is_new and wa.profile_id != crm.profile_id and wa.merges == []
    assert await owner(pool, "whatsapp:551188887777") == wa.profile_id
    assert await owner(pool, "phone:+551188887777") == wa.profile_id  # "+" added
    sid = await pool.fetchval(
        "SELECT id FROM suggestions WHERE reason = 'variant' AND profile_id = $1 AND candidate_id = $2",
        wa.profile_id,
        crm.profile_id,
    )
    assert sid is not None

    async def accept(conn: asyncpg.Connection) -> AppliedMerge:
        return await lifecycle.accept_suggestion(conn, sid, actor="agent:7", at=datetime.now(UTC))

    merge = await serializable(pool, accept)
    assert merge.survivor_id == crm.profile_id and merge.absorbed_id == wa.profile_id
    audit = await pool.fetchrow(
        "SELECT actor, action, detail::text AS d FROM audit_log WHERE action = 'merge'"
    )
    assert audit["actor"] == "agent:7" and "5511" not in audit["d"]


async def test_case_7_crm_conflict(observe: Observe, pool: asyncpg.Pool) -> None:
    p1 = pid(await observe(addr("crm", "100"), addr("email", "e1@x.io")))
    r = await observe(addr("crm", "200"), addr("email", "e1@x.io"))
    assert r.is_new and r.profile_id != p1
    assert await owner(pool, "email:e1@x.io") == p1
    assert await owner(pool, "crm:200") == r.profile_id
    conflict = await pool.fetchrow("SELECT kind, profile_id, other_profile_id FROM conflicts")
    assert dict(conflict) == {"kind": "strong_id", "profile_id": r.profile_id, "other_profile_id": p1}


async def test_case_8_race_and_rekey(identity_url: str, observe: Observe, pool: asyncpg.Pool) -> None:
    p1 = pid(await observe(addr("crm", "1"), at=T0))
    p2 = pid(await observe(addr("phone", "+14155550102"), at=T0 + timedelta(seconds=1)))
    p3 = pid(await observe(addr("phone", "+14155550103"), at=T0 + timedelta(seconds=2)))
    other_pool = await create_pool(identity_url, schema="identity", min_size=1, max_size=2)
    try:
        a, b = Resolver(POLICY), Resolver(POLICY)
        # Two instances, each with its own pool and cache, merge into P1 at the same moment.
        ra, rb = await asyncio.gather(
            observe(addr("crm", "1"), addr("phone", "+14155550102"), using=a),
            _observe_on(other_pool, b, addr("crm", "1"), addr("phone", "+14155550103")),
        )
        assert ra.profile_id == rb.profile_id == p1
        assert await canonical(pool, p2) == p1 and await canonical(pool, p3) == p1
        merges = await pool.fetch("SELECT survivor_id, absorbed_id FROM merges ORDER BY absorbed_id")
        assert sorted((m["survivor_id"], m["absorbed_id"]) for m in merges) == sorted([(p1, p2), (p1, p3)])
        # Replayed and reordered: the same state, no new merge.
        for r in (b, a):
            again = await observe(addr("crm", "1"), addr("phone", "+14155550103"), using=r)
            assert again.profile_id == p1 and again.merges == []
        again = await observe(addr("phone", "+14155550102"), addr("crm", "1"))
        assert again.merges == [] and await pool.fetchval("SELECT count(*) FROM merges") == 2
    finally:
        await other_pool.close()


async def _observe_on(pool: asyncpg.Pool, resolver: Resolver, *addresses: Address) -> Outcome:
    obs = Observation(source="test", observed_at=datetime.now(UTC), interaction_id="race-b")

    async def work(conn: asyncpg.Connection) -> Outcome:
        return await resolver.resolve(conn, addresses, obs, source_id="race-b")

    outcome = await serializable(pool, work)
    resolver.after_commit(outcome)
    return outcome


async def _entry(
    pool: asyncpg.Pool, entry_id: str, pid: str, at: datetime, identifier_key: str | None
) -> None:
    ident = None
    if identifier_key:
        k = IdentifierKey.parse(identifier_key)
        ident = await pool.fetchval(
            "SELECT id FROM identifiers WHERE kind = $1 AND namespace = $2 AND value = $3",
            k.kind.value,
            k.namespace,
            k.value,
        )

    async def work(conn: asyncpg.Connection) -> bool:
        return await timeline.record(
            conn,
            timeline.NewEntry(entry_id, pid, "inbound", "message", entry_id, "test", at, identifier_id=ident),
        )

    await serializable(pool, work)


async def test_case_9_unmerge(observe: Observe, pool: asyncpg.Pool) -> None:
    p1 = pid(await observe(addr("email", "p1@x.io"), at=T0))
    await _entry(pool, "before-p1", p1, T0, "email:p1@x.io")
    p2 = pid(await observe(addr("phone", "+14155550109"), at=T0 + timedelta(seconds=1)))
    await _entry(pool, "before-p2", p2, T0, "phone:+14155550109")
    wrong = await observe(addr("email", "p1@x.io"), addr("phone", "+14155550109"), at=T0 + timedelta(hours=1))
    assert [(m.survivor_id, m.absorbed_id) for m in wrong.merges] == [(p1, p2)]
    # New contacts after the merge, through each identifier.
    await _entry(pool, "after-phone", p1, T0 + timedelta(hours=2), "phone:+14155550109")
    await _entry(pool, "after-email", p1, T0 + timedelta(hours=2), "email:p1@x.io")

    async def work(conn: asyncpg.Connection) -> lifecycle.SplitResult:
        return await lifecycle.split(conn, p1, p2, actor="admin", at=datetime.now(UTC))

    result = await serializable(pool, work)
    assert result.identifier_keys == ("phone:+14155550109",)
    assert await owner(pool, "phone:+14155550109") == p2
    assert await canonical(pool, p2) == p2
    entries = {
        r["entry_id"]: r["profile_id"] for r in await pool.fetch("SELECT entry_id, profile_id FROM timeline")
    }
    assert entries == {"before-p1": p1, "after-email": p1, "before-p2": p2, "after-phone": p2}
    assert [r["action"] for r in await pool.fetch("SELECT action FROM audit_log ORDER BY id")] == [
        "merge",
        "split",
    ]
    later = await observe(addr("phone", "+14155550109"))
    assert later.profile_id == p2


async def test_case_10_erasure(observe: Observe, pool: asyncpg.Pool) -> None:
    p1 = pid(await observe(addr("email", "gone@x.io"), at=T0))
    p2 = pid(await observe(addr("phone", "+14155550110"), at=T0 + timedelta(seconds=1)))
    await observe(addr("email", "gone@x.io"), addr("phone", "+14155550110"), at=T0 + timedelta(minutes=1))
    await _entry(pool, "history", p1, T0, "email:gone@x.io")
    erased_at = datetime.now(UTC)

    async def work(conn: asyncpg.Connection) -> lifecycle.ErasureResult:
        return await lifecycle.erase(conn, p1, actor="admin", at=erased_at)

    result = await serializable(pool, work)
    assert result.alias_ids == (p2,)
    assert await pool.fetchval("SELECT count(*) FROM identifiers") == 0
    assert await pool.fetchval("SELECT count(*) FROM timeline") == 0
    assert await pool.fetchval("SELECT count(*) FROM link_evidence") == 0
    assert await pool.fetchval("SELECT count(*) FROM suppressions") == 2
    audit = await pool.fetch("SELECT detail::text AS d, other_profile_ids FROM audit_log")
    assert all("gone@" not in r["d"] and "4155550110" not in r["d"] for r in audit)
    # A replay of the old contacts resurrects nothing.
    replay = await observe(
        addr("email", "gone@x.io"), addr("phone", "+14155550110"), at=T0 + timedelta(minutes=1)
    )
    assert replay.profile_id is None
    assert await pool.fetchval("SELECT count(*) FROM identifiers") == 0
    # A new e-mail after the erasure: policy allows a fresh profile by default ...
    fresh = await observe(addr("email", "gone@x.io"), at=erased_at + timedelta(minutes=1))
    assert fresh.is_new and fresh.profile_id not in (p1, p2)
    # ... and with suppression after erasure it only gets an ephemeral one.
    strict = Resolver(POLICY, suppress_after_erasure=True)
    kept = await observe(addr("phone", "+14155550110"), at=erased_at + timedelta(minutes=2), using=strict)
    assert kept.is_new and await owner(pool, "phone:+14155550110") is None


async def test_erasing_one_family_member_keeps_the_shared_phone_for_the_other(
    observe: Observe, pool: asyncpg.Pool
) -> None:
    mum = pid(await observe(addr("phone", "+447700900555"), addr("email", "mum@x.io")))
    son = pid(await observe(addr("email", "son@y.io")))
    await observe(addr("phone", "+447700900555"), addr("email", "son@y.io"))

    async def work(conn: asyncpg.Connection) -> lifecycle.ErasureResult:
        return await lifecycle.erase(conn, mum, actor="admin", at=datetime.now(UTC))

    result = await serializable(pool, work)
    assert result.identifiers_erased == 1  # mum's e-mail; the phone stays with the son
    assert await owner(pool, "phone:+447700900555") == son
    assert await owner(pool, "email:mum@x.io") is None
    assert pid(await observe(addr("phone", "+447700900555"))) == son

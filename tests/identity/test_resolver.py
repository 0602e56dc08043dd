"""The tiered rules on the in-memory reference graph (the same cases run through PostgreSQL elsewhere)."""

from __future__ import annotations

from omnirouter_identity.core.decisions import (
    ConflictKind,
    CreateProfile,
    Dropped,
    DropReason,
    MergeProfiles,
    ReportConflict,
    Suggest,
    SuggestionReason,
)
from omnirouter_identity.core.identifiers import IdentifierKey
from omnirouter_identity.core.memory import MemoryGraph
from tests.identity.helpers import addr, claims


def key(text: str) -> IdentifierKey:
    return IdentifierKey.parse(text)


def test_new_contact_creates_a_profile_and_the_next_one_finds_it() -> None:
    g = MemoryGraph()
    first = g.observe(claims(addr("phone", "+14155550100")))
    second = g.observe(claims(addr("phone", "(415) 555-0100")))
    assert first.is_new and not second.is_new
    assert second.profile_id == first.profile_id


def test_only_junk_gives_an_ephemeral_profile_each_time() -> None:
    g = MemoryGraph()
    a = g.observe(claims(addr("phone", "anonymous")))
    b = g.observe(claims(addr("phone", "anonymous")))
    assert a.profile_id != b.profile_id
    assert CreateProfile(a.profile_id, ephemeral=True) in a.decisions
    assert g.identifiers == {}


def test_verified_ids_seen_together_merge_into_the_oldest_profile() -> None:
    g = MemoryGraph()
    p1 = g.observe(claims(addr("email", "a@shop.io"))).profile_id
    p2 = g.observe(claims(addr("phone", "+14155550100"))).profile_id
    r = g.observe(claims(addr("phone", "+14155550100"), addr("email", "a@shop.io")))
    assert r.profile_id == p1
    assert r.merges == (MergeProfiles(p1, p2, r.merges[0].reason, (key("phone:+14155550100"),)),)
    assert g.canonical(p2) == p1


def test_family_phone_becomes_shared_instead_of_merging(  # case 1
) -> None:
    g = MemoryGraph()
    p1 = g.observe(claims(addr("phone", "+447700900123"), addr("email", "mum@x.io"))).profile_id
    p2 = g.observe(claims(addr("email", "son@y.io"))).profile_id
    assert g.observe(claims(addr("phone", "+447700900123"))).profile_id == p1
    typed = g.observe(claims(addr("webchat", "v-1"), addr("email", "son@y.io", verified=False)))
    assert (
        Suggest(typed.profile_id, p2, SuggestionReason.TYPED_MATCH, key("email:son@y.io")) in typed.decisions
    )
    assert typed.merges == ()
    both = g.observe(claims(addr("phone", "+447700900123"), addr("email", "son@y.io")))
    assert both.profile_id == p2 and both.merges == ()
    phone = g.identifiers[key("phone:+447700900123")]
    assert phone.shared and set(phone.holders) == {p1, p2}


def test_kiosk_cookie_is_demoted(  # case 3
) -> None:
    g = MemoryGraph()
    p1 = g.observe(claims(addr("webchat", "c1"), addr("email", "e1@x.io"))).profile_id
    p2 = g.observe(claims(addr("email", "e2@x.io"))).profile_id
    r = g.observe(claims(addr("webchat", "c1"), addr("email", "e2@x.io")))
    assert r.profile_id == p2 and r.merges == ()
    assert any(isinstance(d, Dropped) and d.reason is DropReason.DEMOTED for d in r.decisions)
    assert g.identifiers[key("webchat:c1")].owner == p1


def test_two_crm_ids_never_merge(  # case 7
) -> None:
    g = MemoryGraph()
    p1 = g.observe(claims(addr("crm", "100"), addr("email", "e1@x.io"))).profile_id
    r = g.observe(claims(addr("crm", "200"), addr("email", "e1@x.io")))
    assert r.is_new and r.profile_id != p1 and r.merges == ()
    assert g.identifiers[key("email:e1@x.io")].owner == p1
    assert g.identifiers[key("crm:200")].owner == r.profile_id
    assert any(isinstance(d, ReportConflict) and d.kind is ConflictKind.STRONG_ID for d in r.decisions)


def test_strong_id_merges_automatically() -> None:
    g = MemoryGraph()
    p1 = g.observe(claims(addr("crm", "100"))).profile_id
    p2 = g.observe(claims(addr("email", "e1@x.io"), addr("email", "e9@x.io"))).profile_id
    r = g.observe(claims(addr("crm", "100"), addr("email", "e1@x.io")))
    assert r.profile_id == p1 and [m.absorbed_id for m in r.merges] == [p2]


def test_variant_gives_a_suggestion_only(  # case 6
) -> None:
    g = MemoryGraph()
    p1 = g.observe(claims(addr("crm", "c-9"), addr("phone", "+5511988887777"))).profile_id
    r = g.observe(claims(addr("whatsapp", "551188887777")))
    assert r.is_new and r.merges == ()
    assert any(
        isinstance(d, Suggest) and d.candidate_id == p1 and d.reason is SuggestionReason.VARIANT
        for d in r.decisions
    )


def test_joining_more_than_three_profiles_at_once_goes_to_review() -> None:
    g = MemoryGraph()
    phones = ["+14155550101", "+14155550102", "+14155550103", "+14155550104"]
    ids = [g.observe(claims(addr("phone", p))).profile_id for p in phones]
    r = g.observe(claims(*(addr("phone", p) for p in phones)))
    assert len(r.merges) == 2 and r.profile_id == ids[0]
    assert any(isinstance(d, ReportConflict) and d.kind is ConflictKind.MERGE_LIMIT for d in r.decisions)


def test_per_kind_cap_stops_a_sixth_phone() -> None:
    g = MemoryGraph()
    phones = [f"+1415555010{i}" for i in range(6)]
    p = g.observe(claims(addr("email", "hub@x.io"))).profile_id
    for ph in phones:
        g.observe(claims(addr("email", "hub@x.io"), addr("phone", ph)))
    assert g.facts(p).identifier_counts[key("phone:+14155550100").kind] == 5

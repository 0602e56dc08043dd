"""Hypothesis properties of the resolution rules on the in-memory reference graph."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from omnirouter_identity.core.identifiers import Claim, IdentifierKey
from omnirouter_identity.core.memory import MemoryGraph
from omnirouter_identity.core.resolver import Caps
from tests.identity.helpers import addr, claims

_ANY = [
    addr("phone", "+14155550100"),
    addr("phone", "+14155550101"),
    addr("phone", "+14155550102", verified=False),
    addr("whatsapp", "14155550101"),
    addr("email", "a@x.io"),
    addr("email", "b@x.io"),
    addr("email", "b@x.io", verified=False),
    addr("email", "c.d+1@gmail.com"),
    addr("email", "cd@gmail.com"),
    addr("crm", "100"),
    addr("crm", "200"),
    addr("login", "u-1"),
    addr("webchat", "v-1"),
    addr("telegram", "77"),
    addr("messenger", "m1", namespace="page"),
    addr("phone", "anonymous"),
]
_events = st.lists(st.lists(st.sampled_from(_ANY), min_size=0, max_size=4), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(_events)
def test_no_identifier_is_live_on_two_profiles_unless_shared(events: list[list[object]]) -> None:
    g = MemoryGraph()
    for event in events:
        r = g.observe(claims(*event))  # type: ignore[arg-type]
        assert r.profile_id in g.profiles
    for ident in g.identifiers.values():
        assert ident.owner in g.profiles
        if not ident.shared:
            assert ident.holders == []
        assert set(ident.holders) <= set(g.profiles)
    strong_keys = _strong_keys()
    for profile in g.profiles:
        strong = Counter(k.kind for k, i in g.identifiers.items() if i.owner == profile and k in strong_keys)
        assert all(n <= 1 for n in strong.values()), f"two strong ids of one kind on {profile}"


def _strong_keys() -> set[IdentifierKey]:
    return {c.key for a in _ANY for c in claims(a) if c.tier.name == "STRONG"}


# Order independence holds where no guard rail depends on what came first: verified person-level ids
# (no e-mail sets to compare, no strong ids, generous caps). The result is the connected components.
_SIMPLE = [addr("phone", f"+1415555020{i}") for i in range(4)] + [addr("telegram", str(i)) for i in range(3)]
_simple_events = st.lists(st.lists(st.sampled_from(_SIMPLE), min_size=1, max_size=3), min_size=1, max_size=12)
_NO_CAPS = Caps(max_identifiers=1000, max_per_kind={}, max_merges=1000, max_profiles_per_event=1000)


@settings(max_examples=150, deadline=None)
@given(_simple_events, st.randoms(use_true_random=False))
def test_merge_results_do_not_depend_on_event_order(events: list[list[object]], rnd: object) -> None:
    batches = [claims(*e) for e in events]  # type: ignore[arg-type]
    shuffled = list(batches)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    replayed = batches + shuffled  # a replay after the fact changes nothing either
    results = []
    for order in (batches, shuffled, replayed):
        g = MemoryGraph(caps=_NO_CAPS)
        for b in order:
            g.observe(b)
        results.append(g.partition())
    assert results[0] == results[1] == results[2] == _components(batches)


def _components(batches: list[tuple[Claim, ...]]) -> frozenset[frozenset[IdentifierKey]]:
    parent: dict[IdentifierKey, IdentifierKey] = {}

    def find(k: IdentifierKey) -> IdentifierKey:
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    for b in batches:
        keys = [c.key for c in b]
        for k in keys[1:]:
            parent[find(k)] = find(keys[0])
        for k in keys:
            find(k)
    groups: dict[IdentifierKey, set[IdentifierKey]] = {}
    for k in parent:
        groups.setdefault(find(k), set()).add(k)
    return frozenset(frozenset(g) for g in groups.values())

"""An in-memory identity graph that applies decisions exactly as the PostgreSQL store does.

It is the reference model for the property tests (no identifier live on two profiles unless shared;
merge results independent of event order) and a fake for unit tests of code that needs a store.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from omnirouter_identity.core.decisions import (
    AddSharedHolder,
    CreateProfile,
    Decision,
    LinkIdentifier,
    MergeProfiles,
)
from omnirouter_identity.core.identifiers import Claim, IdentifierKey, Tier
from omnirouter_identity.core.resolver import Caps, Resolution, resolve
from omnirouter_identity.core.view import GraphView, HeldIdentifier, ProfileFacts, VariantHolder
from omnirouter_shared.contracts.common import AddressKind

_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class _Ident:
    owner: str
    tier: Tier
    variant_key: str | None
    shared: bool = False
    holders: list[str] = field(default_factory=list)


@dataclass
class MemoryGraph:
    profiles: dict[str, datetime] = field(default_factory=dict)
    identifiers: dict[IdentifierKey, _Ident] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    merge_counts: dict[str, int] = field(default_factory=dict)
    caps: Caps = field(default_factory=Caps)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def view(self, claims: Iterable[Claim]) -> GraphView:
        claims = list(claims)
        held = {
            c.key: HeldIdentifier(
                c.key, ident.owner, ident.shared, tuple(ident.holders) if ident.shared else ()
            )
            for c in claims
            if (ident := self.identifiers.get(c.key)) is not None
        }
        profile_ids = {p for h in held.values() for p in h.all_holders}
        variants: dict[str, tuple[VariantHolder, ...]] = {}
        for c in claims:
            if c.variant_key is not None:
                variants[c.variant_key] = tuple(
                    VariantHolder(k, i.owner)
                    for k, i in self.identifiers.items()
                    if i.variant_key == c.variant_key
                )
                profile_ids |= {v.profile_id for v in variants[c.variant_key]}
        return GraphView(held=held, profiles={p: self.facts(p) for p in profile_ids}, variants=variants)

    def facts(self, profile_id: str) -> ProfileFacts:
        mine = [(k, i) for k, i in self.identifiers.items() if i.owner == profile_id]
        counts: dict[AddressKind, int] = {}
        for k, _ in mine:
            counts[k.kind] = counts.get(k.kind, 0) + 1
        return ProfileFacts(
            id=profile_id,
            created_at=self.profiles[profile_id],
            strong={k.kind: k.value for k, i in mine if i.tier is Tier.STRONG},
            verified_emails=frozenset(
                k.value for k, i in mine if k.kind is AddressKind.EMAIL and i.tier >= Tier.VERIFIED
            ),
            identifier_counts=counts,
            merge_count=self.merge_counts.get(profile_id, 0),
        )

    def observe(self, claims: Iterable[Claim]) -> Resolution:
        claims = list(claims)
        n = next(self._ids)
        resolution = resolve(claims, self.view(claims), new_profile_id=f"p{n:04d}", caps=self.caps)
        self.apply(resolution.decisions, at=_EPOCH + timedelta(seconds=n))
        return resolution

    def apply(self, decisions: Iterable[Decision], *, at: datetime) -> None:
        for d in decisions:
            if isinstance(d, CreateProfile):
                self.profiles[d.profile_id] = at
            elif isinstance(d, MergeProfiles):
                self._merge(d)
            elif isinstance(d, LinkIdentifier):
                current = self.identifiers.get(d.claim.key)
                if current is None:
                    self.identifiers[d.claim.key] = _Ident(d.profile_id, d.claim.tier, d.claim.variant_key)
                elif current.owner != d.profile_id and not current.shared:
                    raise AssertionError(
                        f"{d.claim.key.text} is live on {current.owner}; link to {d.profile_id}"
                    )
                else:
                    current.tier = max(current.tier, d.claim.tier)
            elif isinstance(d, AddSharedHolder):
                ident = self.identifiers[d.key]
                if not ident.shared:
                    ident.shared = True
                    ident.holders = [ident.owner]
                if d.profile_id not in ident.holders:
                    ident.holders.insert(0, d.profile_id)

    def _merge(self, d: MergeProfiles) -> None:
        for ident in self.identifiers.values():
            if ident.owner == d.absorbed_id:
                ident.owner = d.survivor_id
            if d.absorbed_id in ident.holders:
                ident.holders = list(
                    dict.fromkeys(d.survivor_id if h == d.absorbed_id else h for h in ident.holders)
                )
        del self.profiles[d.absorbed_id]
        self.aliases[d.absorbed_id] = d.survivor_id
        for alias, target in list(self.aliases.items()):
            if target == d.absorbed_id:
                self.aliases[alias] = d.survivor_id
        self.merge_counts[d.survivor_id] = (
            self.merge_counts.get(d.survivor_id, 0) + self.merge_counts.pop(d.absorbed_id, 0) + 1
        )

    def canonical(self, profile_id: str) -> str:
        return self.aliases.get(profile_id, profile_id)

    def partition(self) -> frozenset[frozenset[IdentifierKey]]:
        """Which identifiers live together, independent of the ids the profiles happen to have."""
        groups: dict[str, set[IdentifierKey]] = {}
        for key, ident in self.identifiers.items():
            groups.setdefault(ident.owner, set()).add(key)
        return frozenset(frozenset(g) for g in groups.values())

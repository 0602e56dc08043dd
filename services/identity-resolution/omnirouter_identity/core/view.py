"""What the resolver needs to know about the graph around one interaction: a read-only snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from omnirouter_identity.core.identifiers import IdentifierKey
from omnirouter_shared.contracts.common import AddressKind


@dataclass(frozen=True, slots=True)
class HeldIdentifier:
    key: IdentifierKey
    owner: str
    shared: bool = False
    #: Every profile that may use a shared identifier, most recently active first (the owner included).
    holders: tuple[str, ...] = ()

    @property
    def all_holders(self) -> tuple[str, ...]:
        return self.holders or (self.owner,)


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    id: str
    created_at: datetime
    #: The strong id per strong kind (at most one each, enforced by the schema as well).
    strong: Mapping[AddressKind, str] = field(default_factory=dict)
    verified_emails: frozenset[str] = frozenset()
    identifier_counts: Mapping[AddressKind, int] = field(default_factory=dict)
    merge_count: int = 0

    @property
    def identifier_total(self) -> int:
        return sum(self.identifier_counts.values())

    @property
    def age_key(self) -> tuple[datetime, str]:
        """Older profiles survive merges: their id is the one other systems have seen longest."""
        return (self.created_at, self.id)


@dataclass(frozen=True, slots=True)
class VariantHolder:
    key: IdentifierKey
    profile_id: str


@dataclass(frozen=True, slots=True)
class GraphView:
    held: Mapping[IdentifierKey, HeldIdentifier] = field(default_factory=dict)
    profiles: Mapping[str, ProfileFacts] = field(default_factory=dict)
    variants: Mapping[str, tuple[VariantHolder, ...]] = field(default_factory=dict)
    #: Keys on the erasure suppression list whose erasure happened after the interaction occurred.
    suppressed: frozenset[IdentifierKey] = frozenset()

"""Identifier keys, evidence tiers and the priority that decides which identifier anchors a contact."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum

from omnirouter_shared.contracts.common import AddressKind


class Tier(IntEnum):
    """How far an identifier can be trusted (identity-anchors.md, section 3)."""

    #: Typed by the customer, never proven: never merges, at most a suggestion.
    TYPED = 1
    #: The channel proved control (carrier caller id, the vendor delivered from it): links on a single match.
    VERIFIED = 2
    #: CRM id or authenticated login: merges automatically, one value per kind per profile, ever.
    STRONG = 3


STRONG_KINDS = frozenset({AddressKind.CRM, AddressKind.LOGIN})

#: Kinds a household or a switchboard legitimately shares: on a guard-rail hit they become ``shared``
#: (lookup-only) instead of merging two people into one.
SHAREABLE_KINDS = frozenset({AddressKind.PHONE, AddressKind.WHATSAPP})

#: Kinds that identify a device or a browser rather than a person: they resolve a contact to the
#: profile that holds them, but never pull two profiles together (the kiosk cookie, case 3).
NON_MERGING_KINDS = frozenset({AddressKind.WEBCHAT})

#: Lower number = stronger anchor. Strong ids first, then the per-person channel ids, then addresses a
#: family can share, and browser cookies last.
KIND_PRIORITY: dict[AddressKind, int] = {
    AddressKind.CRM: 0,
    AddressKind.LOGIN: 1,
    AddressKind.EMAIL: 2,
    AddressKind.TELEGRAM: 3,
    AddressKind.MESSENGER: 4,
    AddressKind.INSTAGRAM: 5,
    AddressKind.WHATSAPP: 6,
    AddressKind.PHONE: 7,
    AddressKind.WEBCHAT: 8,
}


@dataclass(frozen=True, order=True, slots=True)
class IdentifierKey:
    """A normalised identifier: unique across live profiles unless marked shared."""

    kind: AddressKind
    namespace: str
    value: str

    @property
    def text(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.value}:{ns}{self.value}"

    @property
    def priority(self) -> int:
        return KIND_PRIORITY[self.kind]

    def suppression_hash(self) -> str:
        """What the erasure suppression list stores: enough to recognise the value, never to recover it."""
        return hashlib.sha256(f"omnirouter-identity-suppression:{self.text}".encode()).hexdigest()

    @classmethod
    def parse(cls, text: str) -> IdentifierKey:
        """Inverse of :attr:`text`; raises ValueError on a malformed key."""
        kind_text, sep, rest = text.partition(":")
        if not sep or not rest:
            raise ValueError(f"not an identifier key: {text!r}")
        kind = AddressKind(kind_text)
        if kind in NAMESPACED_KINDS:
            namespace, slash, value = rest.partition("/")
            if not slash or not namespace or not value:
                raise ValueError(f"{kind.value} keys are page-scoped: {text!r}")
            return cls(kind, namespace, value)
        return cls(kind, "", rest)


#: Page-scoped ids: the same person has a different id per page, and the same id on two pages may be two
#: different people, so the page is part of the key.
NAMESPACED_KINDS = frozenset({AddressKind.MESSENGER, AddressKind.INSTAGRAM})


@dataclass(frozen=True, slots=True)
class Claim:
    """One identifier an interaction carried, after normalisation, with how much it can be trusted."""

    key: IdentifierKey
    tier: Tier
    #: A looser form (Gmail without dots/plus tags, a Brazilian mobile with its 9th digit) that only
    #: ever produces merge suggestions.
    variant_key: str | None = None
    #: Non-identifying attributes kept beside the key (a phone extension).
    attributes: tuple[tuple[str, str], ...] = field(default=())

    @property
    def drives_merges(self) -> bool:
        return self.tier >= Tier.VERIFIED and self.key.kind not in NON_MERGING_KINDS

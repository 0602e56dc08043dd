"""Decisions as data: what the resolver wants done, for the store to apply in one transaction.

Commands are imperative (``LinkIdentifier``); the store applies them in list order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from omnirouter_identity.core.identifiers import Claim, IdentifierKey


@dataclass(frozen=True, slots=True)
class CreateProfile:
    profile_id: str
    #: No usable identifier: the contact gets a profile of its own that nothing will ever match.
    ephemeral: bool = False


@dataclass(frozen=True, slots=True)
class LinkIdentifier:
    """Attach ``claim`` to ``profile_id`` (or refresh its evidence if it is already there)."""

    profile_id: str
    claim: Claim


@dataclass(frozen=True, slots=True)
class AddSharedHolder:
    """Mark ``key`` shared (lookup-only) and let ``profile_id`` use it too."""

    key: IdentifierKey
    profile_id: str


@dataclass(frozen=True, slots=True)
class RecordTypedClaim:
    """Keep a typed, unverified value as evidence on the profile without making it a key."""

    profile_id: str
    claim: Claim


@dataclass(frozen=True, slots=True)
class MergeProfiles:
    survivor_id: str
    absorbed_id: str
    reason: str
    #: The identifiers that justified the merge, kept in the merge log so it can be reviewed and split.
    evidence: tuple[IdentifierKey, ...]


class SuggestionReason(StrEnum):
    TYPED_MATCH = "typed_match"
    VARIANT = "variant"
    GUARD_RAIL = "guard_rail"


@dataclass(frozen=True, slots=True)
class Suggest:
    """Two profiles may be one person; an agent decides."""

    profile_id: str
    candidate_id: str
    reason: SuggestionReason
    key: IdentifierKey


class ConflictKind(StrEnum):
    STRONG_ID = "strong_id"
    CAP = "cap"
    MERGE_LIMIT = "merge_limit"
    DUPLICATE_STRONG_IN_EVENT = "duplicate_strong_in_event"


@dataclass(frozen=True, slots=True)
class ReportConflict:
    kind: ConflictKind
    profile_id: str
    other_profile_id: str | None
    key: IdentifierKey
    detail: str


class DropReason(StrEnum):
    JUNK = "junk"
    SUPPRESSED = "suppressed"
    DEMOTED = "demoted"


@dataclass(frozen=True, slots=True)
class Dropped:
    """An identifier the interaction carried that was deliberately not used (kept for metrics/audit)."""

    key_kind: str
    reason: DropReason
    detail: str


Decision = (
    CreateProfile
    | LinkIdentifier
    | AddSharedHolder
    | RecordTypedClaim
    | MergeProfiles
    | Suggest
    | ReportConflict
    | Dropped
)

"""The tiered resolution rules: which profile an interaction belongs to, and what to link, merge or flag.

Guard rails (identity-anchors.md, section 3) in the order they apply:
1. Junk and suppressed values never become keys (see :mod:`.normalise` and ``GraphView.suppressed``).
2. The anchor is the profile holding the strongest identifier: a strong id, else a channel-verified id
   held by exactly one profile (a ``shared`` key is lookup-only and anchors only as a last resort).
3. Another profile holding a verified id of the contact is merged in unless a guard rail trips: two
   different strong ids of one kind, two distinct verified e-mail sets without strong evidence, the
   merge and size caps. On a trip, phone numbers become ``shared``; anything else becomes a suggestion.
4. Typed values and look-alike variants never merge: they produce suggestions.
The survivor of a merge is the oldest profile, so two resolvers deciding the same merge agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from omnirouter_identity.core.decisions import (
    AddSharedHolder,
    ConflictKind,
    CreateProfile,
    Decision,
    Dropped,
    DropReason,
    LinkIdentifier,
    MergeProfiles,
    RecordTypedClaim,
    ReportConflict,
    Suggest,
    SuggestionReason,
)
from omnirouter_identity.core.identifiers import SHAREABLE_KINDS, Claim, IdentifierKey, Tier
from omnirouter_identity.core.view import GraphView, HeldIdentifier, ProfileFacts
from omnirouter_shared.contracts.common import AddressKind

RULE_VERSION = "tiered-v1"

_NEWEST = datetime.max


@dataclass(frozen=True, slots=True)
class Caps:
    """Circuit breakers against over-merging (Segment allows 100 merges; we stop at 50)."""

    max_identifiers: int = 20
    max_per_kind: Mapping[AddressKind, int] = field(
        default_factory=lambda: {
            AddressKind.PHONE: 5,
            AddressKind.WHATSAPP: 5,
            AddressKind.EMAIL: 5,
            AddressKind.WEBCHAT: 10,
        }
    )
    max_merges: int = 50
    max_profiles_per_event: int = 3


@dataclass(frozen=True, slots=True)
class Resolution:
    profile_id: str
    is_new: bool
    decisions: tuple[Decision, ...]
    #: The contact was matched only through a shared key (family phone): no stickiness downstream.
    via_shared: bool = False

    @property
    def merges(self) -> tuple[MergeProfiles, ...]:
        return tuple(d for d in self.decisions if isinstance(d, MergeProfiles))


class _Group:
    """The profiles this interaction ends up joining, with their combined facts for the guard rails."""

    def __init__(self, anchor: ProfileFacts) -> None:
        self.members: dict[str, ProfileFacts] = {anchor.id: anchor}
        self.strong: dict[AddressKind, str] = dict(anchor.strong)
        self.emails: set[str] = set(anchor.verified_emails)
        self.counts: dict[AddressKind, int] = dict(anchor.identifier_counts)
        self.merges = anchor.merge_count
        self.evidence: dict[str, list[IdentifierKey]] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def strong_conflict(self, strong: Mapping[AddressKind, str]) -> bool:
        return any(self.strong.get(kind, value) != value for kind, value in strong.items())

    def absorb(self, facts: ProfileFacts, key: IdentifierKey) -> None:
        self.members[facts.id] = facts
        self.strong.update(facts.strong)
        self.emails |= facts.verified_emails
        for kind, n in facts.identifier_counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        self.merges += facts.merge_count + 1
        self.evidence.setdefault(facts.id, []).append(key)

    def add_identifier(self, claim: Claim) -> None:
        kind = claim.key.kind
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if claim.tier is Tier.STRONG:
            self.strong[kind] = claim.key.value
        if kind is AddressKind.EMAIL and claim.tier >= Tier.VERIFIED:
            self.emails.add(claim.key.value)

    def survivor(self) -> str:
        return min(self.members.values(), key=lambda f: f.age_key).id


def resolve(
    claims: Sequence[Claim], view: GraphView, *, new_profile_id: str, caps: Caps | None = None
) -> Resolution:
    """Decide where one interaction's identifiers belong. Pure: same inputs, same decisions."""
    caps = caps or Caps()
    decisions: list[Decision] = []
    usable = _usable(claims, view, decisions)
    usable, extra_strong = _one_strong_per_kind(usable)
    event_has_strong = any(c.tier is Tier.STRONG for c in usable)

    anchor, via_shared = _anchor(usable, view)
    is_new = anchor is None
    if anchor is None:
        ephemeral = not any(c.tier >= Tier.VERIFIED for c in usable)
        decisions.append(CreateProfile(new_profile_id, ephemeral=ephemeral))
        anchor_facts = ProfileFacts(id=new_profile_id, created_at=_NEWEST)
    else:
        anchor_facts = view.profiles[anchor]
    group = _Group(anchor_facts)
    anchor_id = anchor_facts.id
    body: list[Decision] = []

    for claim in usable:
        held = view.held.get(claim.key)
        if claim.tier is Tier.TYPED:
            if held is None:
                body.append(RecordTypedClaim(anchor_id, claim))
            elif not set(held.all_holders) & group.members.keys():
                body.append(Suggest(anchor_id, held.owner, SuggestionReason.TYPED_MATCH, claim.key))
            continue
        if held is None:
            _link_new(claim, anchor_id, group, caps, body)
        elif held.shared:
            body.append(AddSharedHolder(claim.key, anchor_id))
        elif held.owner in group.members:
            body.append(LinkIdentifier(anchor_id, claim))
        else:
            _join_other(claim, held, anchor_id, group, view, caps, event_has_strong, body)

    for claim in usable:
        if claim.variant_key is None:
            continue
        for holder in view.variants.get(claim.variant_key, ()):
            if holder.key != claim.key and holder.profile_id not in group.members:
                body.append(Suggest(anchor_id, holder.profile_id, SuggestionReason.VARIANT, claim.key))
    for claim in extra_strong:
        body.append(
            ReportConflict(
                ConflictKind.DUPLICATE_STRONG_IN_EVENT,
                anchor_id,
                None,
                claim.key,
                f"interaction carried two {claim.key.kind.value} ids; the second was ignored",
            )
        )

    survivor = group.survivor()
    for member in sorted(group.members.values(), key=lambda f: f.age_key):
        if member.id != survivor:
            keys = tuple(group.evidence.get(member.id, ())) or tuple(group.evidence.get(survivor, ()))
            decisions.append(MergeProfiles(survivor, member.id, _merge_reason(keys), keys))
    decisions.extend(_repoint(body, group.members.keys(), survivor))
    return Resolution(survivor, is_new, tuple(_dedup(decisions)), via_shared)


def _usable(claims: Sequence[Claim], view: GraphView, decisions: list[Decision]) -> list[Claim]:
    best: dict[IdentifierKey, Claim] = {}
    for claim in claims:
        if claim.key in view.suppressed:
            decisions.append(Dropped(claim.key.kind.value, DropReason.SUPPRESSED, "erased identifier"))
            continue
        current = best.get(claim.key)
        if current is None or claim.tier > current.tier:
            best[claim.key] = claim
    # Strongest evidence first, then by kind priority; the key itself breaks ties deterministically.
    return sorted(best.values(), key=lambda c: (-c.tier, c.key.priority, c.key))


def _one_strong_per_kind(claims: list[Claim]) -> tuple[list[Claim], list[Claim]]:
    seen: set[AddressKind] = set()
    kept: list[Claim] = []
    extra: list[Claim] = []
    for claim in claims:
        if claim.tier is Tier.STRONG:
            if claim.key.kind in seen:
                extra.append(claim)
                continue
            seen.add(claim.key.kind)
        kept.append(claim)
    return kept, extra


def _anchor(claims: list[Claim], view: GraphView) -> tuple[str | None, bool]:
    new_strong = {c.key.kind: c.key.value for c in claims if c.tier is Tier.STRONG and c.key not in view.held}

    def compatible(profile_id: str) -> bool:
        strong = view.profiles[profile_id].strong
        return all(strong.get(kind, value) == value for kind, value in new_strong.items())

    for claim in claims:
        held = view.held.get(claim.key)
        if claim.tier is Tier.STRONG and held is not None:
            return held.owner, False
    for claim in claims:
        held = view.held.get(claim.key)
        if claim.tier is Tier.VERIFIED and held is not None and not held.shared and compatible(held.owner):
            return held.owner, False
    for claim in claims:
        held = view.held.get(claim.key)
        if claim.tier >= Tier.VERIFIED and held is not None and held.shared:
            for holder in held.all_holders:
                if compatible(holder):
                    return holder, True
    return None, False


def _link_new(claim: Claim, anchor_id: str, group: _Group, caps: Caps, body: list[Decision]) -> None:
    kind = claim.key.kind
    if claim.tier is Tier.STRONG and group.strong.get(kind, claim.key.value) != claim.key.value:
        body.append(
            ReportConflict(
                ConflictKind.STRONG_ID,
                anchor_id,
                None,
                claim.key,
                f"profile already has a different {kind.value} id; one strong id per kind, ever",
            )
        )
        return
    cap = caps.max_per_kind.get(kind)
    if (cap is not None and group.counts.get(kind, 0) >= cap) or group.total >= caps.max_identifiers:
        body.append(
            ReportConflict(
                ConflictKind.CAP, anchor_id, None, claim.key, f"identifier cap reached for {kind.value}"
            )
        )
        return
    group.add_identifier(claim)
    body.append(LinkIdentifier(anchor_id, claim))


def _join_other(
    claim: Claim,
    held: HeldIdentifier,
    anchor_id: str,
    group: _Group,
    view: GraphView,
    caps: Caps,
    event_has_strong: bool,
    body: list[Decision],
) -> None:
    other = view.profiles[held.owner]
    if not claim.drives_merges:
        # A browser cookie seen with someone else's identifiers: the device is shared (a kiosk), not
        # the person. The cookie stays where it is and proves nothing (case 3).
        body.append(Dropped(claim.key.kind.value, DropReason.DEMOTED, "device id held by another profile"))
        return
    if group.strong_conflict(other.strong):
        body.append(
            ReportConflict(
                ConflictKind.STRONG_ID,
                anchor_id,
                other.id,
                claim.key,
                "the profiles hold different strong ids of the same kind",
            )
        )
        if claim.key.kind in SHAREABLE_KINDS:
            body.append(AddSharedHolder(claim.key, anchor_id))
        return
    if (
        not event_has_strong
        and claim.tier is Tier.VERIFIED
        and group.emails
        and other.verified_emails
        and not group.emails & other.verified_emails
    ):
        # Two people with their own verified mailboxes using one number: a family phone or a switchboard.
        _share_or_suggest(claim, anchor_id, other.id, body)
        return
    too_big = (
        len(group.members) + 1 > caps.max_profiles_per_event
        or group.merges + other.merge_count + 1 > caps.max_merges
        or group.total + other.identifier_total > caps.max_identifiers
    )
    if too_big:
        body.append(
            ReportConflict(
                ConflictKind.MERGE_LIMIT,
                anchor_id,
                other.id,
                claim.key,
                "merge would exceed the per-profile merge or size limits; sent to review",
            )
        )
        body.append(Suggest(anchor_id, other.id, SuggestionReason.GUARD_RAIL, claim.key))
        return
    group.absorb(other, claim.key)
    body.append(LinkIdentifier(anchor_id, claim))


def _share_or_suggest(claim: Claim, anchor_id: str, other_id: str, body: list[Decision]) -> None:
    if claim.key.kind in SHAREABLE_KINDS:
        body.append(AddSharedHolder(claim.key, anchor_id))
    else:
        body.append(Suggest(anchor_id, other_id, SuggestionReason.GUARD_RAIL, claim.key))


def _merge_reason(keys: tuple[IdentifierKey, ...]) -> str:
    kinds = sorted({k.kind.value for k in keys})
    return f"{RULE_VERSION}: shared verified " + ", ".join(kinds) if kinds else RULE_VERSION


def _repoint(body: list[Decision], members: Iterable[str], survivor: str) -> list[Decision]:
    ids = set(members)
    out: list[Decision] = []
    for d in body:
        if isinstance(d, LinkIdentifier | AddSharedHolder | RecordTypedClaim | ReportConflict) and (
            d.profile_id in ids
        ):
            d = replace(d, profile_id=survivor)
        if isinstance(d, Suggest):
            d = replace(d, profile_id=survivor) if d.profile_id in ids else d
            if d.candidate_id in ids:
                continue
        out.append(d)
    return out


def _dedup(decisions: list[Decision]) -> list[Decision]:
    seen: set[Decision] = set()
    out: list[Decision] = []
    for d in decisions:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out

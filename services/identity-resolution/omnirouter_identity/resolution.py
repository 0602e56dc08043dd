"""Resolving one contact's identifiers to a customer inside the caller's transaction: the hot-identity
fast path, else a graph read, the pure resolver and the decisions applied."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from omnirouter_identity import metrics
from omnirouter_identity.cache import IdentityCache
from omnirouter_identity.core.decisions import AddSharedHolder
from omnirouter_identity.core.identifiers import Claim, IdentifierKey, Tier
from omnirouter_identity.core.normalise import NormalisationPolicy, claims_for
from omnirouter_identity.core.resolver import Caps, resolve
from omnirouter_identity.store import graph
from omnirouter_identity.store.graph import AppliedMerge, Observation
from omnirouter_shared.contracts.common import Address


@dataclass
class Outcome:
    #: None: every identifier was erased after this (replayed) interaction happened; drop it.
    profile_id: str | None
    is_new: bool = False
    via_shared: bool = False
    merges: list[AppliedMerge] = field(default_factory=list)
    identifier_ids: dict[IdentifierKey, int] = field(default_factory=dict)
    #: Applied to the cache only after the transaction commits.
    cache_puts: list[tuple[str, str]] = field(default_factory=list)
    cache_drop_profiles: set[str] = field(default_factory=set)
    cache_drop_keys: set[str] = field(default_factory=set)


class Resolver:
    def __init__(
        self,
        policy: NormalisationPolicy,
        *,
        caps: Caps | None = None,
        cache: IdentityCache | None = None,
        suppress_after_erasure: bool = False,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.policy = policy
        self.caps = caps or Caps()
        self.cache = cache or IdentityCache()
        self.suppress_after_erasure = suppress_after_erasure
        self._new_id = new_id

    async def resolve(
        self, conn: asyncpg.Connection, addresses: Sequence[Address], obs: Observation, *, source_id: str
    ) -> Outcome:
        claims, dropped = claims_for(addresses, self.policy)
        for d in dropped:
            metrics.DROPPED.labels(d.reason.value).inc()
        fast = await self._fast_path(conn, claims, obs)
        if fast is not None:
            metrics.RESOLUTIONS.labels("cached").inc()
            return fast
        view, replayed = await graph.load_view(
            conn, claims, occurred_at=obs.observed_at, suppress_all=self.suppress_after_erasure
        )
        if claims and all(c.key in replayed for c in claims):
            metrics.RESOLUTIONS.labels("suppressed").inc()
            return Outcome(profile_id=None)
        resolution = resolve(claims, view, new_profile_id=self._new_id(), caps=self.caps)
        applied = await graph.apply(conn, resolution.decisions, obs, source_id=source_id)
        metrics.RESOLUTIONS.labels(
            "new" if resolution.is_new else "merged" if applied.merges else "found"
        ).inc()
        shared = {d.key for d in resolution.decisions if isinstance(d, AddSharedHolder)}
        puts = [
            (key.text, resolution.profile_id)
            for key in applied.identifier_ids
            if key not in shared and not ((held := view.held.get(key)) is not None and held.shared)
        ]
        return Outcome(
            profile_id=resolution.profile_id,
            is_new=resolution.is_new,
            via_shared=resolution.via_shared,
            merges=applied.merges,
            identifier_ids=applied.identifier_ids,
            cache_puts=puts,
            # Absorbed profiles' keys now answer to the survivor; a key that just became shared must
            # not answer from the cache at all.
            cache_drop_profiles={m.absorbed_id for m in applied.merges},
            cache_drop_keys={k.text for k in shared},
        )

    async def _fast_path(
        self, conn: asyncpg.Connection, claims: Sequence[Claim], obs: Observation
    ) -> Outcome | None:
        if not claims or any(c.tier < Tier.VERIFIED for c in claims):
            return None
        owners = {self.cache.get(c.key.text) for c in claims}
        if len(owners) != 1 or None in owners:
            return None
        profile_id = owners.pop()
        assert profile_id is not None
        ids = await graph.touch_cached(conn, [c.key for c in claims], profile_id, obs.observed_at)
        if ids is None:
            self.cache.invalidate_keys(c.key.text for c in claims)
            return None
        return Outcome(profile_id=profile_id, identifier_ids=ids)

    def after_commit(self, outcome: Outcome) -> None:
        self.cache.invalidate_profiles(outcome.cache_drop_profiles)
        self.cache.invalidate_keys(outcome.cache_drop_keys)
        for key, profile_id in outcome.cache_puts:
            self.cache.put(key, profile_id)

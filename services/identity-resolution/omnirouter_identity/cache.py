"""An LRU of identifier key -> customer id for the identities seen most, so a returning customer is
resolved in one validating statement instead of a full graph read.

The cache is only a hint: the resolver validates it inside its transaction (the identifier must still
be owned by that profile and not shared), so an entry made stale by another instance's merge costs a
slow path, never a wrong answer. This instance drops entries itself on merge, split and erasure.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from omnirouter_identity import metrics


class IdentityCache:
    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._by_profile: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> str | None:
        profile = self._entries.get(key)
        if profile is None:
            metrics.CACHE.labels("miss").inc()
            return None
        self._entries.move_to_end(key)
        metrics.CACHE.labels("hit").inc()
        return profile

    def put(self, key: str, profile_id: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._by_profile.get(old, set()).discard(key)
        self._entries[key] = profile_id
        self._by_profile.setdefault(profile_id, set()).add(key)
        while len(self._entries) > self._capacity:
            evicted, owner = self._entries.popitem(last=False)
            keys = self._by_profile.get(owner)
            if keys is not None:
                keys.discard(evicted)
                if not keys:
                    del self._by_profile[owner]

    def invalidate_profiles(self, profile_ids: Iterable[str]) -> None:
        for profile_id in profile_ids:
            for key in self._by_profile.pop(profile_id, set()):
                self._entries.pop(key, None)

    def invalidate_keys(self, keys: Iterable[str]) -> None:
        for key in keys:
            owner = self._entries.pop(key, None)
            if owner is not None:
                self._by_profile.get(owner, set()).discard(key)

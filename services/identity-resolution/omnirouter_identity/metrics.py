"""identity-resolution's own metrics (the Kafka/HTTP ones live in omnirouter_shared)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from omnirouter_shared.observability.metrics import LATENCY_BUCKETS

RESOLVE_LATENCY = Histogram(
    "omni_identity_resolve_seconds",
    "Time to resolve one batch of interactions, database commit included",
    buckets=LATENCY_BUCKETS,
)
RESOLUTIONS = Counter("omni_identity_resolutions_total", "Interactions resolved", ["outcome"])
DECISIONS = Counter("omni_identity_decisions_total", "Resolver decisions applied", ["decision"])
DROPPED = Counter("omni_identity_dropped_identifiers_total", "Identifiers not used as keys", ["reason"])
TX_RETRIES = Counter("omni_identity_tx_retries_total", "Transactions retried after a conflict", ["error"])
CACHE = Counter("omni_identity_cache_total", "Hot-identity cache lookups", ["result"])

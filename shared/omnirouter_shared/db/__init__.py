"""PostgreSQL plumbing: pools bound to a service's own schema, SQL migrations, event deduplication."""

from omnirouter_shared.db.dedup import claim_events
from omnirouter_shared.db.migrations import migrate
from omnirouter_shared.db.pool import create_pool

__all__ = ["claim_events", "create_pool", "migrate"]

"""Create the registry's topics (idempotently) for `make run`, the tests and a fresh cluster."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from omnirouter_shared.topics import TOPICS, TopicSpec


async def ensure_topics(
    bootstrap_servers: str,
    *,
    prefix: str = "",
    replication_factor: int = 1,
    partitions_override: int | None = None,
    specs: list[TopicSpec] | None = None,
) -> list[str]:
    """Create missing topics; return the names that were created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                f"{prefix}{spec.topic}",
                partitions_override or spec.partitions,
                replication_factor,
                topic_configs=spec.topic_config(),
            )
            for spec in (specs or list(TOPICS.values()))
            if f"{prefix}{spec.topic}" not in existing
        ]
        if wanted:
            # Another process may create them in between: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()

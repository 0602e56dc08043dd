"""The routing app factory: HTTP routes, and in one cleanup context the producer, the inbox processor
with its consume loop and tickers, and the configuration watcher, stopped in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from aiohttp import web

from omnirouter_routing import metrics
from omnirouter_routing.config import RoutingConfig, load_config
from omnirouter_routing.service.audit import AuditWriter
from omnirouter_routing.service.config_watcher import ConfigWatcher
from omnirouter_routing.service.http_api import RoutingApi
from omnirouter_routing.service.http_auth import auth_middleware
from omnirouter_routing.service.processor import GROUP, RoutingProcessor
from omnirouter_routing.service.snapshot_store import SnapshotStore
from omnirouter_routing.settings import RoutingSettings
from omnirouter_shared.db.pool import create_pool, pool_healthy
from omnirouter_shared.http.errors import error_middleware
from omnirouter_shared.http.limits import rate_limits
from omnirouter_shared.http.ops import Readiness, add_ops_routes
from omnirouter_shared.kafka.consumer import ConsumerLoop
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.observability.logging import get_logger
from omnirouter_shared.topics import Topic

log = get_logger(__name__)

SCHEMA = "routing"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass
class Components:
    settings: RoutingSettings
    pool: asyncpg.Pool
    producer: EventProducer
    processor: RoutingProcessor
    consumer: ConsumerLoop
    watcher: ConfigWatcher | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stats_handle: int | None = None


COMPONENTS = web.AppKey("routing_components", Components)


def initial_config(settings: RoutingSettings) -> RoutingConfig:
    """The configuration at start-up; an invalid file stops the start with every problem listed."""
    if settings.routing_config is None:
        log.warning("ROUTING_CONFIG is not set: using the built-in defaults (one queue, no skills)")
        return RoutingConfig()
    return load_config(settings.routing_config)


async def build_app(settings: RoutingSettings) -> web.Application:
    config = initial_config(settings)
    pool = await create_pool(
        settings.database_url, schema=SCHEMA, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    producer = EventProducer(settings, client_id=f"{settings.service_name}-{settings.instance_id}")
    processor = RoutingProcessor(
        settings, config, producer, AuditWriter(pool), SnapshotStore(settings, producer)
    )
    consumer = ConsumerLoop(
        settings,
        topics=[Topic.ROUTING_INBOX],
        group_id=GROUP,
        handler=processor.handle,
        producer=producer,
        max_batch=settings.max_batch,
        on_assigned=processor.on_assigned,
        on_revoked=processor.on_revoked,
        # The processor decodes, in offset order, so that poison still advances a partition's state.
        decode=False,
    )
    processor.attach(consumer)
    watcher = (
        ConfigWatcher(settings.routing_config, settings.config_poll_interval_s, config, processor.reconfigure)
        if settings.routing_config is not None
        else None
    )
    parts = Components(settings, pool, producer, processor, consumer, watcher)
    app = web.Application(
        middlewares=[
            error_middleware,
            *rate_limits(settings),
            auth_middleware(
                settings.admin_token.get_secret_value(), [t.get_secret_value() for t in settings.api_tokens]
            ),
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[COMPONENTS] = parts
    readiness = Readiness(settings.service_name)
    readiness.add_check("database", lambda: pool_healthy(pool))
    readiness.add_check("broker", producer.healthy)
    readiness.add_check(f"consumer:{GROUP}", lambda: consumer.assigned and consumer.alive)
    readiness.add_check("state_restored", lambda: processor.restored)
    readiness.add_liveness(f"consumer:{GROUP}", lambda: consumer.alive or not producer.started)
    add_ops_routes(app, readiness)
    app.router.add_routes(RoutingApi(processor, settings.instance_id).routes())
    app.cleanup_ctx.append(_run_components)
    return app


async def _run_components(app: web.Application) -> AsyncIterator[None]:
    parts = app[COMPONENTS]
    producer_started = consumer_started = False
    try:
        await parts.producer.start()
        producer_started = True
        await parts.consumer.start()
        consumer_started = True
        if parts.watcher is not None:
            parts.tasks.append(asyncio.create_task(parts.watcher.run(), name="routing-config-watcher"))
        parts.stats_handle = metrics.QUEUES.register(parts.processor.domain_stats)
        yield
    finally:
        if parts.stats_handle is not None:
            metrics.QUEUES.unregister(parts.stats_handle)
        for task in parts.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await parts.processor.close()  # no more ticks
        if consumer_started:
            await parts.consumer.stop()  # finishes the batch in flight and commits
            # A final snapshot: whoever owns the partitions next replays nothing.
            await parts.processor.snapshot_all()
        if producer_started:
            await parts.producer.stop()
        await parts.pool.close()

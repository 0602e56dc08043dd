"""The identity-resolution app factory. The pool opens here (the routes need it); the producer, the
two consumers and the outbox sweeper start in one cleanup context and stop in reverse order: consumers
finish their batch in flight before the producer and pool they use go away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from aiohttp import web

from omnirouter_identity.cache import IdentityCache
from omnirouter_identity.core.normalise import NormalisationPolicy, business_keys
from omnirouter_identity.http_api import CustomerApi
from omnirouter_identity.http_auth import auth_middleware
from omnirouter_identity.kafka_intake import (
    INBOUND_GROUP,
    INBOUND_TOPICS,
    TIMELINE_GROUP,
    TIMELINE_TOPICS,
    InboundHandler,
    TimelineHandler,
    writer_lock,
)
from omnirouter_identity.resolution import Resolver
from omnirouter_identity.settings import IdentitySettings
from omnirouter_identity.store import outbox
from omnirouter_shared.db.pool import create_pool, pool_healthy
from omnirouter_shared.http.errors import error_middleware
from omnirouter_shared.http.limits import rate_limits
from omnirouter_shared.http.ops import Readiness, add_ops_routes
from omnirouter_shared.kafka.consumer import ConsumerLoop
from omnirouter_shared.kafka.producer import BrokerUnavailable, EventProducer
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

SCHEMA = "identity"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SWEEP_INTERVAL_S = 2.0
TIMELINE_FETCH_MAX_WAIT_MS = 200


@dataclass
class Components:
    settings: IdentitySettings
    pool: asyncpg.Pool
    producer: EventProducer
    resolver: Resolver
    consumers: list[ConsumerLoop]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


COMPONENTS = web.AppKey("identity_components", Components)


def build_resolver(settings: IdentitySettings) -> Resolver:
    policy = NormalisationPolicy(
        default_region=settings.default_region,
        business_keys=business_keys(settings.business_addresses, settings.default_region),
    )
    return Resolver(
        policy,
        cache=IdentityCache(settings.cache_size),
        suppress_after_erasure=settings.suppress_after_erasure,
    )


async def build_app(settings: IdentitySettings) -> web.Application:
    resolver = build_resolver(settings)
    pool = await create_pool(
        settings.database_url, schema=SCHEMA, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    producer = EventProducer(settings, client_id=f"{settings.service_name}-{settings.instance_id}")
    writer = writer_lock()
    consumers = (
        [
            ConsumerLoop(
                settings,
                topics=list(INBOUND_TOPICS),
                group_id=INBOUND_GROUP,
                handler=InboundHandler(pool, producer, resolver, writer=writer),
                producer=producer,
                max_batch=settings.max_batch,
            ),
            ConsumerLoop(
                settings,
                topics=list(TIMELINE_TOPICS),
                group_id=TIMELINE_GROUP,
                handler=TimelineHandler(pool, writer=writer),
                producer=producer,
                max_batch=settings.max_batch,
                # The timeline is not on the way to the agent: poll 40 times less often than the
                # inbound consumer, and take bigger batches.
                fetch_max_wait_ms=TIMELINE_FETCH_MAX_WAIT_MS,
            ),
        ]
        if settings.consume
        else []
    )
    parts = Components(settings, pool, producer, resolver, consumers)
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
    for consumer in consumers:
        readiness.add_check(f"consumer:{consumer.group_id}", lambda c=consumer: c.assigned and c.alive)  # type: ignore[misc]
    add_ops_routes(app, readiness)
    app.router.add_routes(CustomerApi(pool, producer, resolver).routes())
    app.cleanup_ctx.append(_run_components)
    return app


async def _sweep_outbox(parts: Components) -> None:
    """Publish what a crash or a broker outage left in the outbox."""
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_S)
        try:
            sent = await outbox.sweep(parts.pool, parts.producer)
            if sent:
                log.info("published events left in the outbox", extra={"events": sent})
        except (BrokerUnavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("outbox sweep failed; will retry", extra={"error": str(exc)})


async def _run_components(app: web.Application) -> AsyncIterator[None]:
    parts = app[COMPONENTS]
    started: list[ConsumerLoop] = []
    producer_started = False
    try:
        await parts.producer.start()
        producer_started = True
        for consumer in parts.consumers:
            await consumer.start()
            started.append(consumer)
        parts.tasks.append(asyncio.create_task(_sweep_outbox(parts), name="outbox-sweeper"))
        yield
    finally:
        for task in parts.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for consumer in reversed(started):
            await consumer.stop()
        if producer_started:
            await parts.producer.stop()
        await parts.pool.close()

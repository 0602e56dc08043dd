"""The channel-gateway app factory: webhook routes, the PostgreSQL pool (dedup, replay guard,
opt-outs, deliveries), the producer, and the outbound consumers, started and stopped in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Middleware

from omnirouter_gateway.adapters import build_adapters
from omnirouter_gateway.dedup import DedupStore
from omnirouter_gateway.delivery import sweep_outbox
from omnirouter_gateway.inbound import meta
from omnirouter_gateway.intake import Intake
from omnirouter_gateway.outbound_intake import Outbound, build_outbound
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_gateway.webchat_browser import WebchatBrowser
from omnirouter_gateway.webhooks import ReplayGuard, webhook_handler
from omnirouter_shared.db.pool import create_pool, pool_healthy
from omnirouter_shared.http.errors import error_middleware
from omnirouter_shared.http.limits import rate_limit_middleware
from omnirouter_shared.http.ops import Readiness, add_ops_routes
from omnirouter_shared.kafka.consumer import ConsumerLoop
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

SCHEMA = "gateway"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
OPENAPI = Path(__file__).resolve().parent.parent / "openapi.yaml"
PRUNE_INTERVAL_S = 3600.0
DEDUP_MEMORY_DAYS = 7.0


@dataclass
class Components:
    settings: GatewaySettings
    pool: asyncpg.Pool
    producer: EventProducer
    dedup: DedupStore
    intake: Intake
    consumers: list[ConsumerLoop] = field(default_factory=list)
    outbound: Outbound | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


COMPONENTS = web.AppKey("gateway_components", Components)


async def build_app(settings: GatewaySettings) -> web.Application:
    pool = await create_pool(
        settings.database_url, schema=SCHEMA, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    producer = EventProducer(settings, client_id=f"{settings.service_name}-{settings.instance_id}")
    dedup = DedupStore(pool, settings.instance_id, settings.claim_lease_s)
    intake = Intake(producer, dedup, service=settings.service_name, inflight_wait_s=settings.inflight_wait_s)
    parts = Components(settings, pool, producer, dedup, intake)
    if settings.deliver:
        parts.outbound = build_outbound(settings, pool, producer)
        parts.consumers.extend(parts.outbound.consumers)
    middlewares: list[Middleware] = [error_middleware]
    if settings.rate_limit_per_s > 0:
        middlewares.append(
            rate_limit_middleware(
                settings.rate_limit_per_s, settings.rate_limit_burst, trusted_proxies=settings.trusted_proxies
            )
        )
    # Bodies are read by the webhook handlers themselves, each with its vendor's limit.
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_email_body_bytes)
    app[COMPONENTS] = parts

    readiness = Readiness(settings.service_name)
    readiness.add_check("database", lambda: pool_healthy(pool))
    readiness.add_check("broker", producer.healthy)
    add_ops_routes(app, readiness)
    app.router.add_get("/openapi.yaml", _openapi)

    replay_guard = ReplayGuard(pool)
    for path, adapter in build_adapters(settings).items():
        app.router.add_post(
            path, webhook_handler(adapter, intake, settings.public_url, replay_guard), name=adapter.name
        )
    webchat = WebchatBrowser(settings, pool, intake)
    webchat.add_routes(app)
    app.router.add_get("/webhooks/meta", meta.verification_handler(settings))

    # Readiness gates the vendors' webhooks, which need only the broker and the database: outbound
    # delivery waiting for its consumer group (a session time-out after a crash) must not refuse them.
    for consumer in parts.consumers:
        readiness.add_liveness(f"consumer:{consumer.group_id}", lambda c=consumer: c.alive)  # type: ignore[misc]
    app.cleanup_ctx.append(_run_components)
    # After the pool is up and before it closes: the web chat LISTEN connection and its sockets.
    app.cleanup_ctx.append(webchat.run)
    return app


async def _openapi(_: web.Request) -> web.Response:
    return web.Response(text=OPENAPI.read_text(), content_type="application/yaml")


async def _prune(parts: Components) -> None:
    while True:
        try:
            pruned = await parts.dedup.prune(DEDUP_MEMORY_DAYS)
            if pruned:
                log.info("pruned old dedup rows", extra={"rows": pruned})
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("dedup prune failed; will retry", extra={"error": str(exc)})
        await asyncio.sleep(PRUNE_INTERVAL_S)


async def _run_components(app: web.Application) -> AsyncIterator[None]:
    parts = app[COMPONENTS]
    started: list[ConsumerLoop] = []
    try:
        await parts.producer.start()
        parts.dedup.start()
        for consumer in parts.consumers:
            await consumer.start()
            started.append(consumer)
        parts.tasks.append(asyncio.create_task(_prune(parts), name="dedup-prune"))
        if parts.outbound is not None:
            parts.outbound.workers.start()
            parts.tasks.append(
                asyncio.create_task(sweep_outbox(parts.pool, parts.producer), name="delivery-outbox")
            )
        yield
    finally:
        for task in parts.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if parts.outbound is not None:
            # Before the producer: a worker finishing a delivery publishes its status.
            await parts.outbound.workers.stop()
        for consumer in reversed(started):
            await consumer.stop()
        await parts.dedup.stop()
        await parts.producer.stop()
        await parts.pool.close()

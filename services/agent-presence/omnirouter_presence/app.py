"""The agent-presence app factory. The pool is opened here (routes need it before start-up freezes the
router); everything else starts in one cleanup context, in order, and stops in reverse: the decision
consumer finishes its batch before the producer and the pool it uses go away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

from omnirouter_presence import repository as repo
from omnirouter_presence.actions import AgentActions
from omnirouter_presence.heartbeats import HeartbeatSweeper
from omnirouter_presence.http_agent import AgentApi
from omnirouter_presence.http_pages import Pages
from omnirouter_presence.http_roster import RosterApi
from omnirouter_presence.hub import DesktopHub
from omnirouter_presence.kafka_decisions import GROUP_ID, DecisionHandler
from omnirouter_presence.settings import PresenceSettings
from omnirouter_presence.webhook_dispatcher import WebhookDispatcher
from omnirouter_shared.db.pool import create_pool, pool_healthy
from omnirouter_shared.http.errors import error_middleware
from omnirouter_shared.http.limits import rate_limits
from omnirouter_shared.http.ops import Readiness, add_ops_routes
from omnirouter_shared.kafka.consumer import ConsumerLoop
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.topics import Topic

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class HttpClient:
    """The outbound HTTP session (webhooks, identity, routing), opened with the app's event loop."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    def __call__(self) -> aiohttp.ClientSession:
        if self.session is None:
            raise RuntimeError("the HTTP client exists only while the app runs")
        return self.session


@dataclass
class Components:
    settings: PresenceSettings
    pool: asyncpg.Pool
    producer: EventProducer
    actions: AgentActions
    hub: DesktopHub
    dispatcher: WebhookDispatcher
    consumer: ConsumerLoop | None
    http: HttpClient


COMPONENTS = web.AppKey("presence_components", Components)


async def build_app(settings: PresenceSettings) -> web.Application:
    pool = await create_pool(
        settings.database_url,
        schema=repo.SCHEMA,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        init=repo.init_connection,
    )
    producer = EventProducer(settings, client_id=f"{settings.service_name}-{settings.instance_id}")
    actions = AgentActions(pool, producer, settings)
    hub = DesktopHub(
        pool,
        settings.database_url,
        sweep_interval_s=min(settings.heartbeat_interval_s, 5.0),
        on_sweep=HeartbeatSweeper(pool, actions, settings),
    )
    consumer = (
        ConsumerLoop(
            settings,
            topics=[Topic.ROUTING_DECISIONS],
            group_id=GROUP_ID,
            handler=DecisionHandler(
                pool,
                away_reasons=settings.away_reasons,
                webhook_for=actions.webhook_for,
                parallel=settings.decisions_parallel,
            ),
            producer=producer,
        )
        if settings.consume_decisions
        else None
    )
    http = HttpClient()
    dispatcher = WebhookDispatcher(pool, settings, http)
    parts = Components(settings, pool, producer, actions, hub, dispatcher, consumer, http)

    app = web.Application(
        middlewares=[error_middleware, *rate_limits(settings)], client_max_size=settings.max_body_bytes
    )
    app[COMPONENTS] = parts
    readiness = Readiness(settings.service_name)
    readiness.add_check("database", lambda: pool_healthy(pool))
    readiness.add_check("broker", producer.healthy)
    readiness.add_check("listener", lambda: hub.listening)
    readiness.add_check("webhooks", lambda: dispatcher.alive)
    if consumer is not None:
        readiness.add_check("consumer", lambda: consumer.assigned and consumer.alive)
    add_ops_routes(app, readiness)
    app.router.add_routes(RosterApi(pool, producer, settings, actions).routes())
    app.router.add_routes(AgentApi(pool, actions, hub, settings, http).routes())
    app.router.add_routes(Pages(pool, settings, http).routes())
    app.on_shutdown.append(_close_desktops)
    app.cleanup_ctx.append(_run_components)
    return app


async def _close_desktops(app: web.Application) -> None:
    await app[COMPONENTS].hub.close_all()


async def _run_components(app: web.Application) -> AsyncIterator[None]:
    parts = app[COMPONENTS]
    parts.http.session = aiohttp.ClientSession()
    started: list[str] = []
    try:
        await parts.producer.start()
        started.append("producer")
        await parts.hub.start()
        started.append("hub")
        if parts.consumer is not None:
            await parts.consumer.start()
            started.append("consumer")
        await parts.dispatcher.start()
        started.append("dispatcher")
        yield
    finally:
        if "dispatcher" in started:
            await parts.dispatcher.stop()
        if "consumer" in started and parts.consumer is not None:
            await parts.consumer.stop()
        if "hub" in started:
            await parts.hub.stop()
        if "producer" in started:
            await parts.producer.stop()
        await parts.http().close()
        await parts.pool.close()

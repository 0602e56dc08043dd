"""The pages people look at (agent desktop, supervisor wallboard), the wallboard's data, and the API
documents. The pages are static HTML+JS with no data in them: everything they show comes from the
authenticated APIs, so serving them without authentication exposes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from omnirouter_presence import repository as repo
from omnirouter_presence.domain.presence import PresenceState
from omnirouter_presence.http_auth import require_admin
from omnirouter_presence.settings import PresenceSettings

PACKAGE = Path(__file__).resolve().parent
STATIC = PACKAGE / "static"
SERVICE_DIR = PACKAGE.parent

_NO_CACHE = {"Cache-Control": "no-cache"}


class Pages:
    def __init__(
        self, pool: asyncpg.Pool, settings: PresenceSettings, http: Callable[[], aiohttp.ClientSession]
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._http = http

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.get("/desk", self.redirect("/desk/")),
            web.get("/desk/", self.file("desk/index.html")),
            web.get("/desk/desk.js", self.file("desk/desk.js")),
            web.get("/wallboard", self.redirect("/wallboard/")),
            web.get("/wallboard/", self.file("wallboard/index.html")),
            web.get("/wallboard/wallboard.js", self.file("wallboard/wallboard.js")),
            web.get("/static/common.css", self.file("common.css")),
            web.get("/openapi.yaml", self.document("openapi.yaml")),
            web.get("/asyncapi-ws.yaml", self.document("asyncapi-ws.yaml")),
            web.get("/v1/wallboard", self.wallboard),
        ]

    @staticmethod
    def redirect(target: str) -> Any:
        async def handler(_: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(target)

        return handler

    @staticmethod
    def file(name: str) -> Any:
        path = STATIC / name

        async def handler(_: web.Request) -> web.StreamResponse:
            return web.FileResponse(path, headers=_NO_CACHE)

        return handler

    @staticmethod
    def document(name: str) -> Any:
        path = SERVICE_DIR / name

        async def handler(_: web.Request) -> web.StreamResponse:
            return web.FileResponse(path, headers={"Content-Type": "application/yaml", **_NO_CACHE})

        return handler

    async def index(self, _: web.Request) -> web.Response:
        return web.Response(
            text=(
                "<!doctype html><meta charset=utf-8><title>Omnirouter agent-presence</title>"
                '<link rel=stylesheet href="/static/common.css"><main><h1>agent-presence</h1><ul>'
                '<li><a href="/desk/">Agent desktop</a></li><li><a href="/wallboard/">Supervisor wallboard</a></li>'
                '<li><a href="/openapi.yaml">REST API (OpenAPI)</a></li>'
                '<li><a href="/asyncapi-ws.yaml">WebSocket protocol (AsyncAPI)</a></li></ul></main>'
            ),
            content_type="text/html",
        )

    async def wallboard(self, request: web.Request) -> web.Response:
        """Routing's queue statistics (proxied with the admin token) and presence's agents by state."""
        require_admin(request, self._settings.admin_token.get_secret_value())
        async with self._pool.acquire() as conn:
            agents = await repo.agents_overview(conn)
        by_state = Counter(a["state"] for a in agents if a["enabled"])
        routing: Any = None
        routing_error: str | None = None
        if self._settings.routing_url is None:
            routing_error = "ROUTING_URL is not configured"
        else:
            try:
                async with self._http().get(
                    f"{self._settings.routing_url}/v1/stats",
                    headers={"Authorization": f"Bearer {self._settings.admin_token.get_secret_value()}"},
                    timeout=aiohttp.ClientTimeout(total=3),
                ) as resp:
                    if resp.status == 200:
                        routing = await resp.json()
                    else:
                        routing_error = f"routing answered {resp.status}"
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                routing_error = f"routing is unreachable: {type(exc).__name__}"
        return web.json_response(
            {
                "routing": routing,
                "routing_error": routing_error,
                "agents": agents,
                "agents_by_state": {s.value: by_state.get(s.value, 0) for s in PresenceState},
            }
        )

"""/healthz (liveness), /readyz (readiness) and /metrics, the same on every service.

Liveness only says the process is not wedged; it never fails on a broker or database outage, which
would turn an outage into a restart storm. Readiness reflects broker, database and consumer assignment,
and turns false as soon as shutdown starts so the load balancer stops sending traffic.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from omnirouter_shared.observability import metrics

Check = Callable[[], Awaitable[bool] | bool]


class Readiness:
    def __init__(self, service: str) -> None:
        self.service = service
        self._ready_checks: dict[str, Check] = {}
        self._live_checks: dict[str, Check] = {}
        self.draining = False

    def add_check(self, name: str, check: Check) -> None:
        self._ready_checks[name] = check

    def add_liveness(self, name: str, check: Check) -> None:
        self._live_checks[name] = check

    @staticmethod
    async def _run(checks: dict[str, Check]) -> dict[str, bool]:
        async def one(check: Check) -> bool:
            try:
                result = check()
                if inspect.isawaitable(result):
                    result = await asyncio.wait_for(result, timeout=3.0)
                return bool(result)
            except Exception:
                return False

        names = list(checks)
        results = await asyncio.gather(*(one(checks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def ready(self) -> tuple[bool, dict[str, bool]]:
        results = await self._run(self._ready_checks)
        ok = not self.draining and all(results.values())
        metrics.READY.labels(self.service).set(1 if ok else 0)
        return ok, results

    async def live(self) -> tuple[bool, dict[str, bool]]:
        results = await self._run(self._live_checks)
        return all(results.values()), results


READINESS = web.AppKey("readiness", Readiness)


async def _healthz(request: web.Request) -> web.Response:
    ok, checks = await request.app[READINESS].live()
    return web.json_response(
        {"status": "ok" if ok else "unhealthy", "checks": checks}, status=200 if ok else 503
    )


async def _readyz(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    ok, checks = await readiness.ready()
    body: dict[str, object] = {"status": "ready" if ok else "not_ready", "checks": checks}
    if readiness.draining:
        body["draining"] = True
    return web.json_response(body, status=200 if ok else 503)


async def _metrics(_: web.Request) -> web.Response:
    resp = web.Response(body=generate_latest(REGISTRY))
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/livez"})


def add_ops_routes(app: web.Application, readiness: Readiness) -> None:
    app[READINESS] = readiness
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/livez", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)

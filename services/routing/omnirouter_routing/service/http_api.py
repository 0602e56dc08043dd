"""routing's HTTP API: live statistics of the domains this replica owns, and configuration checks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from omnirouter_routing.config import ConfigError, parse_config
from omnirouter_routing.metrics import DomainStats
from omnirouter_routing.service.http_auth import require_admin
from omnirouter_routing.service.processor import RoutingProcessor, config_digest
from omnirouter_shared.http.errors import ApiError

OPENAPI = Path(__file__).resolve().parent.parent.parent / "openapi.yaml"
_JSON_TYPES = {"application/json"}
_YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain", ""}


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _domain_view(ds: DomainStats, clock: datetime | None) -> dict[str, Any]:
    return {
        "domain": ds.domain,
        "partition": ds.partition,
        "clock": clock.isoformat() if clock else None,
        "queues": [dataclasses.asdict(q) for q in ds.stats.queues],
        "agents": dataclasses.asdict(ds.stats.agents),
        "bots": dataclasses.asdict(ds.stats.bots),
    }


class RoutingApi:
    def __init__(self, processor: RoutingProcessor, instance_id: str) -> None:
        self._processor = processor
        self._instance = instance_id
        # Read once at start-up (the file ships next to the package in the source tree and the image).
        self._openapi = OPENAPI.read_bytes() if OPENAPI.is_file() else None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/stats", self.stats),
            web.get("/v1/queues/{name}", self.queue),
            web.post("/v1/config/validate", self.validate),
            web.get("/openapi.yaml", self.openapi),
        ]

    def _clocks(self) -> dict[tuple[int, str], datetime | None]:
        return {(p, d): e.state.clock for p, d, e in self._processor.engines()}

    def _header(self, now: datetime) -> dict[str, Any]:
        return {
            "instance": self._instance,
            "generated_at": now.isoformat(),
            # Statistics cover the domains of the inbox partitions this replica owns; other replicas
            # answer for theirs (Prometheus sums them all).
            "partitions": self._processor.partitions,
        }

    async def stats(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        only = request.query.get("domain")
        clocks = self._clocks()
        domains = [
            _domain_view(ds, clocks.get((ds.partition, ds.domain)))
            for ds in self._processor.domain_stats(now)
            if only is None or ds.domain == only
        ]
        return web.json_response({**self._header(now), "domains": domains}, dumps=_dumps)

    async def queue(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        now = datetime.now(UTC)
        found = []
        for partition, domain, engine in self._processor.engines():
            stats = next((q for q in engine.stats(now).queues if q.queue == name), None)
            if stats is None:
                continue
            found.append(
                {
                    "domain": domain,
                    "partition": partition,
                    "stats": dataclasses.asdict(stats),
                    "waiting_tasks": engine.waiting_in_order(name),
                }
            )
        if not found and name not in self._processor.config.queues:
            raise ApiError(404, "not_found", f"no queue named {name!r}")
        return web.json_response({**self._header(now), "queue": name, "domains": found}, dumps=_dumps)

    async def validate(self, request: web.Request) -> web.Response:
        require_admin(request)
        ctype = request.content_type.lower()
        try:
            body = (await request.read()).decode(request.charset or "utf-8")
        except (UnicodeDecodeError, LookupError):
            raise ApiError(400, "bad_request", "the body is not text in its declared charset") from None
        try:
            if ctype in _JSON_TYPES:
                data = orjson.loads(body) if body.strip() else None
            elif ctype in _YAML_TYPES:
                data = yaml.safe_load(body)
            else:
                raise ApiError(415, "unsupported_media_type", "send the configuration as YAML or JSON")
        except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
            raise ApiError(400, "bad_request", f"the body is not valid {ctype or 'YAML'}: {exc}") from None
        try:
            config = parse_config(data, "request body")
        except ConfigError as exc:
            return web.json_response(
                {
                    "error": "invalid_config",
                    "reason": f"{len(exc.problems)} problem(s) in the configuration",
                    "problems": exc.problems,
                },
                status=422,
            )
        return web.json_response(
            {"valid": True, "queues": sorted(config.queues), "digest": config_digest(config)}
        )

    async def openapi(self, _: web.Request) -> web.Response:
        if self._openapi is None:
            raise ApiError(404, "not_found", "the OpenAPI document is not installed with this build")
        return web.Response(body=self._openapi, content_type="application/yaml")

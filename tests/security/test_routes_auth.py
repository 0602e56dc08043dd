"""Authentication everywhere but vendor webhooks, health and static documents; the routes are taken from
each app's router (built in-process, never started), so a route added without a token check fails here.
Then the cross-service matrix: agent tokens are presence-only, system tokens read but do not administer,
and an agent cannot act on another agent's offers, tasks or customers."""

from __future__ import annotations

import importlib
import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from omnirouter_shared.devstack.services import SERVICES
from omnirouter_shared.settings import load_settings
from tests.e2e.suite import Suite

pytestmark = pytest.mark.integration

SETTINGS = {
    "channel-gateway": ("omnirouter_gateway.settings", "GatewaySettings"),
    "agent-presence": ("omnirouter_presence.settings", "PresenceSettings"),
    "identity-resolution": ("omnirouter_identity.settings", "IdentitySettings"),
    "routing": ("omnirouter_routing.settings", "RoutingSettings"),
}
#: What may answer without a token, and why. Anything else without "/v1/" is a finding.
PUBLIC = {
    "*": re.compile(r"^/(healthz|livez|readyz|metrics|openapi\.yaml)$"),  # probes; the API description
    "channel-gateway": re.compile(r"^/(webhooks/.+|webchat/.+)$"),  # vendors sign; webchat has its own tokens
    "agent-presence": re.compile(
        r"^/(|desk|desk/|desk/desk\.js|wallboard|wallboard/|wallboard/wallboard\.js|static/common\.css|asyncapi-ws\.yaml)$"
    ),  # static pages: they hold no data and call the authenticated API
}


async def routes_of(service: str, env: dict[str, str]) -> list[tuple[str, str]]:
    module, cls_name = SETTINGS[service]
    settings_cls = getattr(importlib.import_module(module), cls_name)
    settings = load_settings(settings_cls, {**env, "HTTP_PORT": "1"})
    app_module = importlib.import_module(dict((n, m) for n, m, _ in SERVICES)[service] + ".app")
    app: web.Application = await app_module.build_app(settings)
    try:
        found = []
        for route in app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path") or info.get("formatter") or ""
            if route.method != "HEAD":
                found.append((route.method, str(path)))
        return sorted(set(found))
    finally:
        await app[app_module.COMPONENTS].pool.close()


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "probe-x", path)


@pytest.mark.parametrize("service", list(SETTINGS))
async def test_every_route_needs_a_token_unless_public(suite: Suite, service: str) -> None:
    routes = await routes_of(service, suite.env)
    assert routes, f"no routes found in {service}"
    unexpected = [
        (m, p)
        for m, p in routes
        if not p.startswith("/v1/")
        and not PUBLIC["*"].match(p)
        and not PUBLIC.get(service, PUBLIC["*"]).match(p)
    ]
    assert not unexpected, f"{service}: routes outside /v1/ that answer without authentication: {unexpected}"
    async with aiohttp.ClientSession() as http:
        for method, path in routes:
            if not path.startswith("/v1/"):
                continue
            url = suite.url(service) + concrete(path)
            for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}):
                async with http.request(method, url, headers=headers, json={}) as r:
                    # 401 (who are you?) or 403 (not with that): refused either way, before any work.
                    assert r.status in (401, 403), (
                        f"{service} {method} {path} with {headers or 'no token'}: {r.status}"
                    )


async def _agent(http: aiohttp.ClientSession, suite: Suite, agent_id: str) -> str:
    admin = {"Authorization": f"Bearer {suite.env['OMNI_ADMIN_TOKEN']}"}
    body: dict[str, Any] = {
        "id": agent_id,
        "name": agent_id,
        "skills": {"billing": 5},
        "capacity": {"sms": 2},
    }
    async with http.post(suite.url("agent-presence") + "/v1/agents", json=body, headers=admin) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["token"])


async def test_cross_service_matrix(suite: Suite) -> None:
    admin = {"Authorization": f"Bearer {suite.env['OMNI_ADMIN_TOKEN']}"}
    system = {"Authorization": f"Bearer {suite.env['OMNI_API_TOKENS']}"}
    async with aiohttp.ClientSession() as http:
        alice = {"Authorization": f"Bearer {await _agent(http, suite, 'sec-alice')}"}
        bob = {"Authorization": f"Bearer {await _agent(http, suite, 'sec-bob')}"}
        p, i, r = suite.url("agent-presence"), suite.url("identity-resolution"), suite.url("routing")
        cases: list[tuple[str, str, dict[str, str], set[int]]] = [
            # An agent's token is for presence only, and only for its own resources.
            ("GET", f"{i}/v1/customers/c1", alice, {401}),
            ("GET", f"{i}/v1/suggestions", alice, {401}),
            ("GET", f"{r}/v1/stats", alice, {401}),
            ("GET", f"{p}/v1/agents", alice, {401, 403}),
            ("POST", f"{p}/v1/agents", alice, {401, 403}),
            ("GET", f"{p}/v1/agents/sec-bob/state", alice, {401, 403}),
            ("GET", f"{p}/v1/agents/sec-bob/ws", alice, {401, 403}),
            ("POST", f"{p}/v1/agents/sec-bob/offers/o1/accept", alice, {401, 403}),
            ("POST", f"{p}/v1/agents/sec-bob/tasks/t1/complete", alice, {401, 403}),
            ("GET", f"{p}/v1/agents/sec-bob/tasks/t1/customer", alice, {401, 403}),
            ("POST", f"{p}/v1/agents/sec-alice/token", alice, {401, 403}),
            # Not its own offer or task, through its own URL: not found, whoever holds it.
            ("POST", f"{p}/v1/agents/sec-bob/offers/no-such-offer/accept", bob, {404, 409}),
            ("GET", f"{p}/v1/agents/sec-bob/tasks/no-such-task/customer", bob, {404}),
            # System tokens read, the admin token administers.
            ("POST", f"{r}/v1/config/validate", system, {403}),
            ("DELETE", f"{i}/v1/customers/c1", system, {403}),
            ("POST", f"{p}/v1/agents", system, {401, 403}),
            ("GET", f"{r}/v1/stats", system, {200}),
            ("GET", f"{r}/v1/stats", admin, {200}),
            ("GET", f"{p}/v1/agents/sec-alice/state", alice, {200}),
        ]
        failures = []
        for method, url, headers, allowed in cases:
            async with http.request(method, url, headers=headers, json={}) as resp:
                if resp.status not in allowed:
                    failures.append(f"{method} {url}: {resp.status} (expected {sorted(allowed)})")
        assert not failures, "\n".join(failures)

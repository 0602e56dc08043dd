"""Request size and per-source rate limits on every public HTTP service: 413 with a JSON reason over the
body limit; 429 with Retry-After when one source floods; another source unaffected; probes and metrics
exempt. Sources are told apart by X-Forwarded-For, trusted from the loopback "ingress" only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from omnirouter_identity.app import MIGRATIONS as IDENTITY_MIGRATIONS
from omnirouter_identity.app import SCHEMA as IDENTITY_SCHEMA
from omnirouter_identity.app import build_app as build_identity
from omnirouter_shared.db import migrate
from tests.gateway.harness import running_gateway
from tests.identity.test_service import settings as identity_settings
from tests.presence.harness import ADMIN as PRESENCE_ADMIN
from tests.presence.harness import make_settings as presence_settings
from tests.presence.harness import running_presence
from tests.routing.integration.harness import ADMIN as ROUTING_ADMIN
from tests.routing.integration.harness import make_settings as routing_settings
from tests.routing.integration.harness import start_routing, write_config

pytestmark = pytest.mark.integration

LIMITS = {"rate_limit_per_s": 1.0, "rate_limit_burst": 5.0, "trusted_proxies": "127.0.0.0/8"}
FLOODER, OTHER, BIG = "203.0.113.1", "203.0.113.2", "203.0.113.3"


async def check_limits(
    base: str,
    *,
    probe: tuple[str, str, dict[str, str]],
    upload: tuple[str, dict[str, str]],
    max_body: int,
    ops: tuple[str, ...] = ("/healthz", "/readyz", "/metrics"),
) -> None:
    method, path, headers = probe
    async with aiohttp.ClientSession() as http:
        # Over the size limit: 413 with a JSON reason (from its own source, not to spend the others' tokens).
        upload_path, upload_headers = upload
        body = b'{"x": "' + b"a" * (max_body + 1024) + b'"}'
        async with http.post(
            base + upload_path, data=body, headers={**upload_headers, "X-Forwarded-For": BIG}
        ) as r:
            assert r.status == 413, await r.text()
            error = await r.json()
            assert error["error"] == "payload_too_large" and error["reason"], error

        # One source floods: the burst passes, then 429 with Retry-After and a JSON error.
        statuses = []
        for _ in range(8):
            async with http.request(
                method, base + path, headers={**headers, "X-Forwarded-For": FLOODER}
            ) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1
                    assert (await r.json())["error"] == "too_many_requests"
        assert 429 not in statuses[:5] and statuses[-1] == 429, statuses

        # Another source is not affected; probes and metrics are exempt even for the flooder.
        async with http.request(method, base + path, headers={**headers, "X-Forwarded-For": OTHER}) as r:
            assert r.status != 429
        for ops_path in ops:
            for _ in range(3):
                async with http.get(base + ops_path, headers={"X-Forwarded-For": FLOODER}) as r:
                    assert r.status == 200, (ops_path, r.status)


async def test_presence_limits(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    settings = presence_settings(kafka_bootstrap, await make_database(), topic_prefix, **LIMITS)
    admin = {"Authorization": f"Bearer {PRESENCE_ADMIN}"}
    async with running_presence(settings) as presence:
        await check_limits(
            presence.url,
            probe=("GET", "/v1/agents", admin),
            upload=("/v1/agents", {**admin, "Content-Type": "application/json"}),
            max_body=settings.max_body_bytes,
        )


async def test_identity_limits(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    url = await make_database()
    await migrate(url, IDENTITY_SCHEMA, IDENTITY_MIGRATIONS)
    settings = identity_settings(kafka_bootstrap, topic_prefix, url, consume=False).model_copy(update=LIMITS)
    server = TestServer(await build_identity(settings))
    await server.start_server()
    crm = {"Authorization": "Bearer crm-token"}
    try:
        await check_limits(
            str(server.make_url("")).rstrip("/"),
            probe=("GET", "/v1/suggestions", {"Authorization": "Bearer admin-secret"}),
            upload=("/v1/interactions", {**crm, "Content-Type": "application/json"}),
            max_body=settings.max_body_bytes,
            ops=("/healthz", "/metrics"),  # not ready without its consumers
        )
    finally:
        await server.close()


async def test_routing_limits(
    kafka_bootstrap: str, topic_prefix: str, routing_db: str, tmp_path: Path
) -> None:
    settings = routing_settings(
        kafka_bootstrap, routing_db, topic_prefix, write_config(tmp_path / "r.yaml"), **LIMITS
    )
    admin = {"Authorization": f"Bearer {ROUTING_ADMIN}"}
    routing = await start_routing(settings)
    try:
        await check_limits(
            routing.url,
            probe=("GET", "/v1/stats", admin),
            upload=("/v1/config/validate", {**admin, "Content-Type": "application/json"}),
            max_body=settings.max_body_bytes,
        )
    finally:
        await routing.stop()


async def test_gateway_limits(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    env = {
        "GATEWAY_RATE_LIMIT_PER_S": "1",
        "GATEWAY_RATE_LIMIT_BURST": "5",
        "GATEWAY_TRUSTED_PROXIES": "127.0.0.0/8",
        "GATEWAY_DELIVER": "false",
    }
    async with running_gateway(kafka_bootstrap, await make_database(), topic_prefix, **env) as gateway:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        await check_limits(
            gateway.url,
            probe=("POST", "/webhooks/twilio/messaging", form),  # unsigned: 401 until the flood is cut
            upload=("/webhooks/twilio/messaging", form),
            max_body=gateway.settings.max_body_bytes,
        )


def test_defaults_are_on_and_documented() -> None:
    from omnirouter_gateway.settings import GatewaySettings
    from omnirouter_identity.settings import IdentitySettings
    from omnirouter_presence.settings import PresenceSettings
    from omnirouter_routing.settings import RoutingSettings

    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    for cls, prefix in (
        (GatewaySettings, "GATEWAY"),
        (PresenceSettings, "PRESENCE"),
        (IdentitySettings, "IDENTITY"),
        (RoutingSettings, "ROUTING"),
    ):
        fields = cls.model_fields
        assert (fields["rate_limit_per_s"].default or 0) > 0, cls
        for name in ("RATE_LIMIT_PER_S", "RATE_LIMIT_BURST", "TRUSTED_PROXIES", "MAX_BODY_BYTES"):
            assert f"{prefix}_{name}" in docs, f"{prefix}_{name} is not in docs/operations.md"

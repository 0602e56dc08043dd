from __future__ import annotations

import ipaddress
from unittest.mock import Mock

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from omnirouter_shared.http.limits import TokenBuckets, client_address, parse_networks, rate_limit_middleware


def test_bucket_allows_a_burst_then_the_rate() -> None:
    b = TokenBuckets(rate_per_s=2, burst=3)
    assert [b.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("a", now=0.0) == 0.5
    assert b.take("a", now=0.5) == 0.0
    assert b.take("other", now=0.5) == 0.0


def test_bucket_memory_is_bounded() -> None:
    b = TokenBuckets(rate_per_s=1, burst=1, max_sources=10)
    for i in range(1000):
        b.take(f"s{i}", now=0.0)
    assert len(b._buckets) == 10


def test_forwarded_for_is_trusted_only_from_configured_proxies() -> None:
    nets = parse_networks("10.0.0.0/8")
    transport = Mock()
    transport.get_extra_info.return_value = ("127.0.0.1", 4000)
    req = make_mocked_request(
        "GET", "/", headers={"X-Forwarded-For": "203.0.113.9, 10.1.2.3"}, transport=transport
    )
    # the peer 127.0.0.1 is not a trusted proxy, so the header is ignored
    assert client_address(req, nets) == "127.0.0.1"
    assert client_address(req, [ipaddress.ip_network("127.0.0.0/8"), *nets]) == "203.0.113.9"


async def test_middleware_answers_json_429_with_retry_after() -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[rate_limit_middleware(1, 2)])
    app.router.add_get("/x", ok)
    app.router.add_get("/healthz", ok)
    async with TestClient(TestServer(app)) as client:
        await _exercise(client)


async def _exercise(client: TestClient) -> None:  # type: ignore[type-arg]
    statuses = [(await client.get("/x")).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    resp = await client.get("/x")
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"] == "too_many_requests"
    assert [(await client.get("/healthz")).status for _ in range(5)] == [200] * 5

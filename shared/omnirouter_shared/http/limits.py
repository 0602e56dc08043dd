"""Per-source request rate limits (token buckets), answered with a JSON 429 and Retry-After.

The source is the peer address. Behind an ingress the peer is the proxy, so the client address is taken
from X-Forwarded-For only when the peer is one of the configured trusted proxies; otherwise the header is
ignored, since anyone can send it.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from omnirouter_shared.http.errors import json_error
from omnirouter_shared.http.ops import OPS_PATHS
from omnirouter_shared.observability.metrics import HTTP_REQUESTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """A bounded LRU of buckets: memory stays flat however many sources appear."""

    def __init__(self, rate_per_s: float, burst: float, max_sources: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, source: str, now: float | None = None) -> float:
        """Take one token; return 0 if allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[source] = bucket
            if len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def client_address(
    request: web.Request, trusted_proxies: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str:
    peer = request.remote or "unknown"
    nets = list(trusted_proxies)
    if not nets:
        return peer
    try:
        peer_ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if not any(peer_ip in n for n in nets):
        return peer
    # Walk X-Forwarded-For from the right, skipping our own proxies: the first other hop is the client.
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not any(ip in n for n in nets):
            return hop
    return peer


def parse_networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip()]


def rate_limit_middleware(
    rate_per_s: float, burst: float, *, trusted_proxies: str = "", exempt: frozenset[str] = OPS_PATHS
) -> Middleware:
    buckets = TokenBuckets(rate_per_s, burst)
    nets = parse_networks(trusted_proxies)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in exempt or rate_per_s <= 0:
            return await handler(request)
        wait = buckets.take(client_address(request, nets))
        if wait > 0:
            HTTP_REQUESTS.labels("rate_limited", request.method, "429").inc()
            return json_error(
                429,
                "too_many_requests",
                "request rate limit for this source exceeded",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return await handler(request)

    return middleware


class LimitSettings(Protocol):
    """What a service's settings say about its limits (each service names the variables after itself)."""

    @property
    def rate_limit_per_s(self) -> float: ...
    @property
    def rate_limit_burst(self) -> float: ...
    @property
    def trusted_proxies(self) -> str: ...


def rate_limits(settings: LimitSettings) -> list[Middleware]:
    """The per-source rate-limit middleware of a service, or none when its rate is 0 (off)."""
    if settings.rate_limit_per_s <= 0:
        return []
    return [
        rate_limit_middleware(
            settings.rate_limit_per_s, settings.rate_limit_burst, trusted_proxies=settings.trusted_proxies
        )
    ]

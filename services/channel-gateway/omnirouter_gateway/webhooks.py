"""The HTTP edge of inbound webhooks: size and type checks, the vendor's verification over the raw
bytes and the public URL, parsing, durable intake, then the vendor's expected answer."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from omnirouter_gateway import metrics
from omnirouter_gateway.inbound.base import (
    Malformed,
    NotConfigured,
    RawRequest,
    Replayed,
    ReplayToken,
    UnsupportedMediaType,
    WebhookAdapter,
    WebhookError,
)
from omnirouter_gateway.intake import Intake, StillInFlight
from omnirouter_shared.http.errors import json_error
from omnirouter_shared.kafka.producer import BrokerUnavailable
from omnirouter_shared.observability.logging import correlation_scope, get_logger

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyTooLarge(WebhookError):
    status, error = 413, "payload_too_large"


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"body of {request.content_length} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def raw_request(request: web.Request, public_url: str, body: bytes) -> RawRequest:
    return RawRequest(
        method=request.method,
        # The URL the vendor called, as configured at the vendor: our public base, never the Host header.
        url=public_url + request.raw_path,
        path=request.path,
        query=dict(request.query),
        headers=request.headers,
        body=body,
        content_type=request.content_type.lower(),
        remote=request.remote,
    )


def refuse(endpoint: str, exc: WebhookError) -> web.Response:
    metrics.WEBHOOKS.labels(endpoint, "refused", exc.error).inc()
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    return json_error(exc.status, exc.error, exc.reason, headers=headers)


class ReplayGuardUnavailable(WebhookError):
    status, error = 503, "unavailable"


class ReplayGuard:
    """One-time vendor tokens (``Parsed.replay_tokens``) in table ``replay_guard``: a token is refused
    when it was first seen with another message; the same message redelivered passes (and is then
    answered as a duplicate by intake). Fails closed: without the table, 503 and the vendor retries."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def check(self, vendor: str, tokens: Sequence[ReplayToken]) -> None:
        try:
            async with self._pool.acquire() as conn:
                for t in tokens:
                    fresh = await conn.fetchval(
                        """
                        INSERT INTO replay_guard (vendor, token, message) VALUES ($1, $2, $3)
                        ON CONFLICT (vendor, token) DO NOTHING RETURNING true
                        """,
                        vendor,
                        t.token,
                        t.message,
                    )
                    if fresh:
                        continue
                    first = await conn.fetchval(
                        "SELECT message FROM replay_guard WHERE vendor = $1 AND token = $2", vendor, t.token
                    )
                    if first is not None and first != t.message:
                        raise Replayed("this signed token was already used for another message")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise ReplayGuardUnavailable("replay protection is unavailable, retry later") from exc


def webhook_handler(
    adapter: WebhookAdapter, intake: Intake, public_url: str, replay_guard: ReplayGuard | None = None
) -> Handler:
    endpoint = adapter.name
    # Bound once: labels() is a locked dictionary lookup, and these run on every accepted webhook.
    answered = {o: metrics.WEBHOOKS.labels(endpoint, o, "") for o in ("accepted", "duplicate")}
    latency = metrics.INTAKE_LATENCY.labels(endpoint)

    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            if not adapter.configured():
                raise NotConfigured(f"{endpoint} is not configured: its secret is not set")
            if request.content_type.lower() not in adapter.content_types:
                raise UnsupportedMediaType(
                    f"{endpoint} expects {' or '.join(sorted(adapter.content_types))}, "
                    f"got {request.content_type or 'none'}"
                )
            body = await read_body(request, adapter.max_body)
            raw = raw_request(request, public_url, body)
            adapter.verify(raw, time.time())
            try:
                parsed = adapter.parse(raw, datetime.now(UTC))
            except ValidationError as exc:
                # Every adapter turns unusable values into Malformed; this is the net under them, so a
                # value the canonical event cannot hold is a 400, never a 500 and a vendor retry loop.
                log.warning("adapter let a validation error through", extra={"endpoint": endpoint})
                raise Malformed(f"{endpoint}: the request has values the event cannot hold") from exc
            if parsed.replay_tokens:
                if replay_guard is None:
                    raise NotConfigured(f"{endpoint} needs replay protection, which is not wired")
                await replay_guard.check(adapter.vendor.value, parsed.replay_tokens)
        except WebhookError as exc:
            if exc.status >= 500:
                log.error("webhook refused", extra={"endpoint": endpoint, "reason": exc.reason})
            else:
                log.info("webhook refused", extra={"endpoint": endpoint, "reason": exc.reason})
            return refuse(endpoint, exc)
        correlation = parsed.events[0].event_id if parsed.events else None
        with correlation_scope(correlation):
            try:
                result = await intake.accept(endpoint, parsed.events)
            except BrokerUnavailable as exc:
                log.error("broker did not acknowledge; answering 503", extra={"endpoint": endpoint})
                metrics.WEBHOOKS.labels(endpoint, "unavailable", "broker").inc()
                return json_error(
                    503, "unavailable", f"event not stored, retry later ({exc})", headers={"Retry-After": "5"}
                )
            except StillInFlight as exc:
                metrics.WEBHOOKS.labels(endpoint, "unavailable", "in_flight").inc()
                return json_error(503, "unavailable", str(exc), headers={"Retry-After": "5"})
            outcome = "accepted" if result.published or not result.duplicates else "duplicate"
            answered[outcome].inc()
            latency.observe(time.perf_counter() - started)
            return adapter.success(parsed)

    return handle

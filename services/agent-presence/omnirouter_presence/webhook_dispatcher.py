"""Delivers the webhook outbox to desktop tools' backends: signed the Standard Webhooks way, retried with
exponential backoff, at least once. Rows are leased, not locked, while a delivery is in flight, so a
replica that dies mid-delivery only delays the message until the lease expires."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

import aiohttp
import asyncpg
import orjson

from omnirouter_presence import metrics
from omnirouter_presence import repository as repo
from omnirouter_presence.domain.webhooks import (
    InvalidSecret,
    is_permanent_failure,
    retry_delay_s,
    signed_headers,
)
from omnirouter_presence.settings import PresenceSettings
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)


class WebhookDispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: PresenceSettings,
        http: Callable[[], aiohttp.ClientSession],
        *,
        poll_interval_s: float = 0.5,
        batch: int = 50,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._http = http
        self._poll = poll_interval_s
        self._batch = batch
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="presence-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _loop(self) -> None:
        while True:
            try:
                delivered = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook dispatch failed; retrying")
                delivered = 0
            if delivered < self._batch:
                await asyncio.sleep(self._poll)

    async def run_once(self) -> int:
        lease = self._settings.webhook_timeout_s * 2 + 5
        async with self._pool.acquire() as conn:
            rows = await repo.claim_webhooks(conn, self._batch, lease)
        # One receiver's messages in order: deliveries for an agent are sequential, agents in parallel.
        by_agent: dict[str, list[repo.OutboxRow]] = {}
        for row in rows:
            by_agent.setdefault(row.agent_id, []).append(row)
        await asyncio.gather(*(self._deliver_in_order(batch) for batch in by_agent.values()))
        return len(rows)

    async def _deliver_in_order(self, rows: list[repo.OutboxRow]) -> None:
        for index, row in enumerate(rows):
            if not await self._deliver(row):
                # Keep the rest behind the failed one so the receiver never sees them out of order.
                async with self._pool.acquire() as conn:
                    for later in rows[index + 1 :]:
                        await conn.execute(
                            "UPDATE webhook_outbox SET next_attempt_at = now() + interval '1 second' WHERE id = $1",
                            later.id,
                        )
                return

    def _target(self, row: repo.OutboxRow) -> tuple[str, str] | None:
        if row.url and row.secret:
            return row.url, row.secret
        s = self._settings
        if s.webhook_url and s.webhook_secret:
            return s.webhook_url, s.webhook_secret.get_secret_value()
        return None

    async def _deliver(self, row: repo.OutboxRow) -> bool:
        target = self._target(row)
        if target is None:
            async with self._pool.acquire() as conn:
                await repo.webhook_failed(conn, row.id, "no webhook URL configured any more", None)
            return True
        url, secret = target
        body = orjson.dumps(row.body)
        error: str
        permanent = False
        try:
            headers = signed_headers(secret, row.msg_id, int(time.time()), body)
            async with self._http().post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._settings.webhook_timeout_s),
            ) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    metrics.WEBHOOK_ATTEMPTS.labels("delivered").inc()
                    async with self._pool.acquire() as conn:
                        await repo.webhook_delivered(conn, row.id)
                    return True
                error = f"HTTP {resp.status}"
                permanent = is_permanent_failure(resp.status)
        except InvalidSecret as exc:
            error, permanent = str(exc), True
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempts = row.attempts + 1
        metrics.WEBHOOK_ATTEMPTS.labels("failed").inc()
        give_up = permanent or attempts >= self._settings.webhook_max_attempts
        delay = (
            None
            if give_up
            else retry_delay_s(
                attempts,
                self._settings.webhook_backoff_base_s,
                self._settings.webhook_backoff_max_s,
                random.random(),
            )
        )
        log.warning(
            "webhook delivery failed",
            extra={
                "agent_id": row.agent_id,
                "msg_id": row.msg_id,
                "attempt": attempts,
                "error": error,
                "retry_in_s": delay,
            },
        )
        async with self._pool.acquire() as conn:
            await repo.webhook_failed(conn, row.id, error, delay)
        return False

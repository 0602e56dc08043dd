"""SERIALIZABLE transactions with retry: two resolver instances racing on one identifier both read the
graph, one commits, the other is rolled back by PostgreSQL and re-reads what the first wrote."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from omnirouter_identity import metrics
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")

#: Serialisation failure, deadlock, a unique key taken by a concurrent writer: all mean "re-read".
_RETRYABLE = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.UniqueViolationError,
)


class StaleView(RuntimeError):
    """What the transaction read changed under it (an identifier moved): retry from the start."""


class TooMuchContention(RuntimeError):
    pass


async def serializable(
    pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]], *, attempts: int = 12
) -> T:
    for attempt in range(1, attempts + 1):
        async with pool.acquire() as conn:
            try:
                async with conn.transaction(isolation="serializable"):
                    return await work(conn)
            except (*_RETRYABLE, StaleView) as exc:
                metrics.TX_RETRIES.labels(type(exc).__name__).inc()
                if attempt == attempts:
                    raise TooMuchContention(f"gave up after {attempts} attempts: {exc}") from exc
                # Jittered back-off so two instances that collided do not collide again in lock-step.
                await asyncio.sleep(min(0.2, 0.002 * 2**attempt) * random.random())
    raise AssertionError("unreachable")

"""A dedicated PostgreSQL connection LISTENing on one channel, for pushing to sockets held by any replica.

NOTIFY is a wake-up, not a delivery: what it announces is always re-read from a table, so a lost
connection costs latency until ``ensure`` reopens it (the owners' sweeps call it), never data."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg


class PgListener:
    def __init__(self, dsn: str, channel: str, on_payload: Callable[[str], None]) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_payload = on_payload
        self._conn: asyncpg.Connection | None = None

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def open(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        await conn.add_listener(self._channel, self._notified)
        self._conn = conn

    async def ensure(self) -> bool:
        """Reopen the connection if it was lost; True when it had to."""
        if self.listening:
            return False
        self._conn = None
        await self.open()
        return True

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_payload(payload)

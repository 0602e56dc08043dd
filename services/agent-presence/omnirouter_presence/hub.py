"""The desktops connected to this replica, and how frames reach them from any replica.

Whoever appends a frame to an agent's feed (the decision consumer, on any replica) NOTIFYs
``presence_feed`` in the same transaction, so the notification is sent only once the frame is durable.
Every replica LISTENs; the one holding the agent's socket reads the feed after the last sequence number
it sent on that socket and sends what is new, in order. Because each socket reads by sequence number, a
lost notification (listener reconnecting) delays a frame but never loses or reorders it: the periodic
sweep below catches up every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from omnirouter_presence import metrics
from omnirouter_presence import repository as repo
from omnirouter_presence.domain.frames import Frame
from omnirouter_shared.db.listen import PgListener
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)


@dataclass(eq=False)
class DesktopSession:
    agent_id: str
    ws: web.WebSocketResponse
    last_seq: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, frame: Frame) -> None:
        if not self.ws.closed:
            await self.ws.send_str(orjson.dumps(frame).decode())
            metrics.FRAMES_PUSHED.labels(str(frame.get("type"))).inc()


class DesktopHub:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        sweep_interval_s: float,
        on_sweep: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool
        self._interval = sweep_interval_s
        self._on_sweep = on_sweep
        self._sessions: dict[str, set[DesktopSession]] = {}
        self._listener = PgListener(dsn, repo.NOTIFY_CHANNEL, self._on_notify)
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        #: Agents with a push task scheduled or running, and those notified again since it started.
        self._pushing: set[str] = set()
        self._again: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._listener.open()
        self._task = asyncio.create_task(self._sweep_loop(), name="presence-hub-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.close_all()
        for t in list(self._pending):
            t.cancel()
        await self._listener.close()

    async def close_all(self) -> None:
        """On shutdown: 1012 "service restart" tells desktops to reconnect (to another replica) and
        resume at once, instead of waiting for the server's drain time-out."""
        for sessions in list(self._sessions.values()):
            for s in list(sessions):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await s.ws.close(code=1012, message=b"server restarting")

    @property
    def listening(self) -> bool:
        return self._listener.listening

    # -- sessions --------------------------------------------------------------------------------------
    def register(self, session: DesktopSession) -> None:
        self._sessions.setdefault(session.agent_id, set()).add(session)
        metrics.DESKTOPS_CONNECTED.set(self.session_count())

    def unregister(self, session: DesktopSession) -> None:
        sessions = self._sessions.get(session.agent_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._sessions[session.agent_id]
        metrics.DESKTOPS_CONNECTED.set(self.session_count())

    def connected_agents(self) -> list[str]:
        return list(self._sessions)

    def session_count(self) -> int:
        return sum(len(s) for s in self._sessions.values())

    async def pump(self, session: DesktopSession) -> None:
        """Send the frames of the agent's feed this socket has not had yet, in order."""
        async with session.lock:
            while not session.ws.closed:
                async with self._pool.acquire() as conn:
                    rows = await repo.feed_after(conn, session.agent_id, session.last_seq)
                for seq, frame in rows:
                    await session.send({**frame, "seq": seq})
                    session.last_seq = seq
                if len(rows) < 200:
                    return

    async def deliver(self, agent_id: str) -> None:
        for session in list(self._sessions.get(agent_id, ())):
            try:
                await self.pump(session)
            except (ConnectionError, RuntimeError, asyncpg.PostgresError, OSError) as exc:
                log.warning(
                    "push failed; the socket will catch up", extra={"agent_id": agent_id, "error": str(exc)}
                )

    async def _push(self, agent_id: str) -> None:
        try:
            while True:
                self._again.discard(agent_id)
                await self.deliver(agent_id)
                if agent_id not in self._again:
                    return
        finally:
            self._pushing.discard(agent_id)
            self._again.discard(agent_id)

    async def disconnect(self, agent_id: str, reason: str) -> None:
        for session in list(self._sessions.get(agent_id, ())):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.send({"type": "error", "error": reason, "reason": "the session was ended"})
            await session.ws.close(code=4001, message=reason.encode())

    # -- notifications ---------------------------------------------------------------------------------
    def _on_notify(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            agent_id = str(message["agent_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring a malformed notification", extra={"payload": payload[:200]})
            return
        if agent_id not in self._sessions:
            return
        if "disconnect" in message:
            coro: Coroutine[Any, Any, None] = self.disconnect(agent_id, str(message["disconnect"]))
        elif agent_id in self._pushing:
            # A transaction appends several frames (assigned, then state): one read of the feed covers
            # the notifications that arrived before it started.
            self._again.add(agent_id)
            return
        else:
            self._pushing.add(agent_id)
            coro = self._push(agent_id)
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                if not self._listener.listening:
                    log.warning("LISTEN connection lost; reconnecting")
                    await self._listener.ensure()
                agents = self.connected_agents()
                if agents:
                    async with self._pool.acquire() as conn:
                        await repo.touch_seen(conn, agents)
                for agent_id in agents:
                    await self.deliver(agent_id)
                if self._on_sweep is not None:
                    await self._on_sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("presence sweep failed; retrying next interval")

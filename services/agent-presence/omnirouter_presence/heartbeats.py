"""Desktops that vanished: an agent not seen for the grace period goes offline, and routing (told by
AgentStatusChanged offline) re-queues its offers. Every replica runs this; row locks with SKIP LOCKED
make each agent's transition happen once."""

from __future__ import annotations

import time

import asyncpg

from omnirouter_presence import metrics
from omnirouter_presence import repository as repo
from omnirouter_presence.actions import ActionError, AgentActions
from omnirouter_presence.settings import PresenceSettings
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

HEARTBEAT_LOST = "heartbeat_lost"


class HeartbeatSweeper:
    def __init__(self, pool: asyncpg.Pool, actions: AgentActions, settings: PresenceSettings) -> None:
        self._pool = pool
        self._actions = actions
        self._settings = settings
        self._last_prune = 0.0

    async def __call__(self) -> None:
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                stale = await repo.stale_agents(conn, self._settings.heartbeat_grace_s)
            if time.monotonic() - self._last_prune > 600:
                self._last_prune = time.monotonic()
                await repo.prune_feed(conn, self._settings.feed_retention_s)
        for agent_id in stale:
            try:
                # go_offline re-checks under the row lock, so two replicas racing publish once.
                if await self._actions.go_offline(
                    agent_id,
                    HEARTBEAT_LOST,
                    "heartbeat",
                    unless_seen_within_s=self._settings.heartbeat_grace_s,
                ):
                    metrics.AGENTS_TIMED_OUT.inc()
                    log.info("desktop gone: agent set offline", extra={"agent_id": agent_id})
            except ActionError as exc:
                log.warning(
                    "could not set a silent agent offline", extra={"agent_id": agent_id, "error": exc.reason}
                )

"""Consumer of omni.routing.decisions (group "agent-presence"): persists offers and assignments and
appends the desktop's frame to the agent's feed, all in one transaction with the event-id claim, so a
redelivered decision changes nothing and is pushed once. The feed row's NOTIFY reaches whichever replica
holds the agent's WebSocket."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from omnirouter_presence import repository as repo
from omnirouter_presence.actions import state_frame
from omnirouter_presence.domain.frames import Decision, OfferState, TaskState, decision_for
from omnirouter_presence.domain.presence import InvalidStatus, validate_status
from omnirouter_shared.contracts.agents import AgentStatus
from omnirouter_shared.contracts.envelope import Envelope
from omnirouter_shared.contracts.routing import (
    AgentStateForced,
    ConversationMessage,
    OfferRescinded,
    TaskAssigned,
    TaskClosed,
    TaskOffered,
)
from omnirouter_shared.db import claim_events
from omnirouter_shared.kafka.consumer import Consumed, Rejection
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

GROUP_ID = "agent-presence"


class DecisionHandler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        away_reasons: tuple[str, ...],
        webhook_for: Callable[[repo.AgentRow], bool],
    ) -> None:
        self._pool = pool
        self._away_reasons = away_reasons
        self._webhook_for = webhook_for

    async def __call__(self, batch: Sequence[Consumed]) -> Sequence[Rejection]:
        todo: list[tuple[Consumed, Envelope, Decision]] = []
        for item in batch:
            if item.envelope is None or item.payload is None:
                continue
            decision = decision_for(item.payload)
            if decision is not None:
                todo.append((item, item.envelope, decision))
        if not todo:
            return []
        rejections: list[Rejection] = []
        async with self._pool.acquire() as conn, conn.transaction():
            # Lock every agent row of the batch up front, in one order (the actions lock one agent row
            # before its tasks): two transactions never wait on each other in a cycle.
            await repo.lock_agents(conn, sorted({d.agent_id for _, _, d in todo}))
            claimed = await claim_events(conn, GROUP_ID, [env.event_id for _, env, _ in todo])
            for item, env, decision in todo:
                if env.event_id not in claimed:
                    continue
                claimed.discard(env.event_id)  # a duplicate inside the batch is applied once
                reason = await self._apply(conn, env, decision)
                if reason is not None:
                    rejections.append(Rejection(item, reason))
        return rejections

    async def _apply(self, conn: asyncpg.Connection, env: Envelope, decision: Decision) -> str | None:
        agent = await repo.get_agent(conn, decision.agent_id, lock=True)
        if agent is None:
            return f"agent {decision.agent_id!r} is not in the roster"
        payload = decision.payload
        cid = env.correlation_id
        refresh = False
        updated: repo.AgentRow | None = None
        match payload:
            case TaskOffered():
                await repo.insert_offer(
                    conn,
                    payload.offer_id,
                    agent.id,
                    payload.task.id,
                    payload.task.customer_id,
                    payload.task.model_dump(mode="json"),
                    payload.expires_at,
                    cid,
                )
            case OfferRescinded():
                await repo.set_offer_state(conn, payload.offer_id, OfferState.RESCINDED)
            case TaskAssigned():
                await repo.settle_offers_for_task(conn, agent.id, payload.task_id)
                await repo.upsert_task(
                    conn,
                    agent.id,
                    payload.task_id,
                    payload.task.conversation_id,
                    payload.task.customer_id,
                    payload.task.channel.value,
                    payload.task.model_dump(mode="json"),
                    cid,
                )
                refresh = True
            case ConversationMessage():
                await repo.append_task_message(conn, payload.task_id, payload.message.model_dump(mode="json"))
            case TaskClosed():
                await repo.set_task_state(
                    conn, payload.task_id, TaskState.CLOSED, only_from=(TaskState.ASSIGNED, TaskState.WRAPUP)
                )
                refresh = True
            case AgentStateForced():
                try:
                    status, reason = validate_status(payload.status, payload.reason, self._away_reasons)
                except InvalidStatus as exc:
                    if exc.code != "invalid_reason":
                        return f"routing forced an unknown status {payload.status!r}"
                    # Routing's own reason codes need not be in this deployment's list of break reasons.
                    status, reason = AgentStatus(payload.status), payload.reason
                updated = await repo.refresh_state(conn, agent.id, "routing", status=status, reason=reason)
        if refresh:
            updated = await repo.refresh_state(conn, agent.id, "routing")
        frame = {**decision.frame, "event_id": env.event_id}
        webhook = self._webhook_for(agent)
        await repo.append_feed(conn, agent.id, env.event_id, frame, webhook=webhook)
        if updated is not None and (updated.state, updated.status) != (agent.state, agent.status):
            # The desktop shows busy / wrap-up / forced states as they follow from routing's decisions.
            load, _ = await repo.load_by_channel(conn, agent.id)
            await repo.append_feed(
                conn, agent.id, f"{env.event_id}:state", state_frame(updated, load), webhook=webhook
            )
        return None

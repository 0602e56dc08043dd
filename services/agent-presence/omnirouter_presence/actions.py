"""What an agent can do, whichever way its desktop integrates (WebSocket frame or REST call).

Each action checks that the offer or task is the agent's own, publishes the event routing (or the
gateway) needs, waiting for the broker's acknowledgement, and only then confirms. Where a state change
guards against doing an action twice (complete, wrap-up, transfer), the change and the publish share a
database transaction: if the broker does not acknowledge, the change rolls back and the agent can retry.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from pydantic import BaseModel

from omnirouter_presence import repository as repo
from omnirouter_presence.domain.frames import OfferState, TaskState
from omnirouter_presence.domain.presence import InvalidStatus, free_capacity, validate_status
from omnirouter_presence.domain.protocol import (
    AcceptCommand,
    CompleteCommand,
    RejectCommand,
    ReplyCommand,
    StatusCommand,
    TransferCommand,
    WrapupDoneCommand,
)
from omnirouter_presence.settings import PresenceSettings
from omnirouter_shared.contracts.agents import (
    AgentKind,
    AgentStatus,
    AgentStatusChanged,
    OfferAccepted,
    OfferRejected,
    TaskCompleted,
    TransferRequested,
    WrapupDone,
)
from omnirouter_shared.contracts.common import Address, Channel
from omnirouter_shared.contracts.envelope import new_envelope
from omnirouter_shared.contracts.replies import ReplyRequested
from omnirouter_shared.kafka.producer import BrokerUnavailable, EventProducer
from omnirouter_shared.topics import Topic

_EVENT_NS = uuid.UUID("0b7c8f1e-3d2a-4b6e-9c1f-5a4e3d2c1b0a")
PRODUCER = "agent-presence"


class ActionError(Exception):
    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


def _event_id(*parts: str) -> str:
    """Deterministic ids for answers that must count once however often the desktop retries."""
    return str(uuid.uuid5(_EVENT_NS, "\x1f".join(parts)))


def state_frame(agent: repo.AgentRow, load: dict[str, int]) -> dict[str, Any]:
    return {
        "type": "state",
        "agent_id": agent.id,
        "status": agent.status.value,
        "reason": agent.status_reason,
        "state": agent.state.value,
        "since": agent.state_since.isoformat(),
        "capacity": agent.record.capacity,
        "load": load,
        "free": free_capacity(agent.record.capacity, load),
    }


class AgentActions:
    def __init__(self, pool: asyncpg.Pool, producer: EventProducer, settings: PresenceSettings) -> None:
        self._pool = pool
        self._producer = producer
        self._settings = settings

    # -- helpers ---------------------------------------------------------------------------------------
    async def _publish_inbox(
        self,
        agent: repo.AgentRow,
        payload: BaseModel,
        *,
        event_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        domain = agent.record.routing_domain
        env = new_envelope(
            payload,
            producer=PRODUCER,
            routing_domain=domain,
            event_id=event_id,
            correlation_id=correlation_id,
        )
        try:
            await self._producer.publish(Topic.ROUTING_INBOX, domain, env)
        except BrokerUnavailable as exc:
            raise ActionError(503, "broker_unavailable", "the event could not be recorded; retry") from exc

    def webhook_for(self, agent: repo.AgentRow) -> bool:
        return agent.record.webhook_url is not None or self._settings.webhook_url is not None

    async def _append_state(
        self,
        conn: asyncpg.Connection,
        agent: repo.AgentRow,
        event_id: str,
        load: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """``load``: the count ``refresh_state_load`` just made, when no task changed since."""
        if load is None:
            load, _ = await repo.load_by_channel(conn, agent.id)
        frame = state_frame(agent, load)
        await repo.append_feed(conn, agent.id, event_id, frame, webhook=self.webhook_for(agent))
        return frame

    async def _not_mine(
        self, conn: asyncpg.Connection, agent_id: str, task_id: str | None, what: str
    ) -> ActionError:
        """403 when the offer or task belongs to another agent, 404 when presence does not know it."""
        owner = await repo.task_owner(conn, task_id) if task_id else None
        if owner is not None and owner != agent_id:
            return ActionError(403, "forbidden", f"this {what} is not yours")
        return ActionError(404, "not_found", f"no such {what} for this agent")

    # -- presence --------------------------------------------------------------------------------------
    async def current_state(self, agent_id: str) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            agent = await repo.get_agent(conn, agent_id)
            if agent is None:
                raise ActionError(404, "not_found", "no such agent")
            load, _ = await repo.load_by_channel(conn, agent_id)
        return state_frame(agent, load)

    async def set_status(
        self, agent: repo.AgentRow, cmd: StatusCommand, *, source: str = "agent"
    ) -> dict[str, Any]:
        try:
            status, reason = validate_status(cmd.status, cmd.reason, self._settings.away_reasons)
        except InvalidStatus as exc:
            raise ActionError(422, exc.code, exc.reason) from None
        if not agent.record.enabled:
            raise ActionError(403, "agent_disabled", "this agent is disabled")
        event_id = str(uuid.uuid4())
        async with self._pool.acquire() as conn, conn.transaction():
            updated = await repo.refresh_state(conn, agent.id, source, status=status, reason=reason)
            assert updated is not None
            await repo.touch_seen(conn, [agent.id])
            # Inside the transaction: routing hears of the change exactly when presence records it.
            await self._publish_inbox(
                updated,
                AgentStatusChanged(agent_id=agent.id, status=status, reason=reason),
                event_id=event_id,
            )
            return await self._append_state(conn, updated, event_id)

    async def heartbeat(self, agent: repo.AgentRow) -> None:
        async with self._pool.acquire() as conn:
            await repo.touch_seen(conn, [agent.id])

    async def go_offline(
        self, agent_id: str, reason: str, source: str, *, unless_seen_within_s: float | None = None
    ) -> bool:
        """Used by the heartbeat sweeper and when an agent is disabled; False when nothing changed."""
        event_id = str(uuid.uuid4())
        async with self._pool.acquire() as conn, conn.transaction():
            agent = await repo.get_agent(conn, agent_id, lock=True)
            if agent is None or agent.status is AgentStatus.OFFLINE:
                return False
            # Re-checked under the row lock: the desktop may have come back since the sweep looked.
            if unless_seen_within_s is not None and await repo.seen_within(
                conn, agent_id, unless_seen_within_s
            ):
                return False
            updated = await repo.refresh_state(
                conn, agent_id, source, status=AgentStatus.OFFLINE, reason=reason
            )
            assert updated is not None
            await self._publish_inbox(
                updated,
                AgentStatusChanged(agent_id=agent_id, status=AgentStatus.OFFLINE, reason=reason),
                event_id=event_id,
            )
            await self._append_state(conn, updated, event_id)
        return True

    # -- offers ----------------------------------------------------------------------------------------
    async def accept(self, agent: repo.AgentRow, cmd: AcceptCommand) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            offer = await repo.find_pending_offer(conn, agent.id, task_id=cmd.task_id, offer_id=cmd.offer_id)
            if offer is None:
                raise await self._offer_problem(conn, agent.id, cmd.task_id, cmd.offer_id)
            await self._publish_inbox(
                agent,
                OfferAccepted(offer_id=offer.offer_id, task_id=offer.task_id, agent_id=agent.id),
                event_id=_event_id("offer.accepted", offer.offer_id),
                correlation_id=offer.correlation_id,
            )
            await repo.record_response(conn, offer.offer_id, "accepted")
        return {"offer_id": offer.offer_id, "task_id": offer.task_id, "accepted": True}

    async def reject(self, agent: repo.AgentRow, cmd: RejectCommand) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            offer = await repo.find_pending_offer(conn, agent.id, task_id=cmd.task_id, offer_id=cmd.offer_id)
            if offer is None:
                raise await self._offer_problem(conn, agent.id, cmd.task_id, cmd.offer_id)
            await self._publish_inbox(
                agent,
                OfferRejected(
                    offer_id=offer.offer_id, task_id=offer.task_id, agent_id=agent.id, reason=cmd.reason
                ),
                event_id=_event_id("offer.rejected", offer.offer_id),
                correlation_id=offer.correlation_id,
            )
            await repo.record_response(conn, offer.offer_id, "rejected")
            # Settled for this agent now: not re-sent on resume, no longer grants the customer's context.
            await repo.set_offer_state(conn, offer.offer_id, OfferState.REJECTED)
        return {"offer_id": offer.offer_id, "task_id": offer.task_id, "rejected": True}

    async def _offer_problem(
        self, conn: asyncpg.Connection, agent_id: str, task_id: str | None, offer_id: str | None
    ) -> ActionError:
        if offer_id is not None:
            offer = await repo.get_offer(conn, offer_id)
            if offer is not None and offer.agent_id != agent_id:
                return ActionError(403, "forbidden", "this offer is not yours")
            if offer is not None:
                return ActionError(409, "offer_not_pending", f"the offer is {offer.state.value} or expired")
        return await self._not_mine(conn, agent_id, task_id, "offer")

    # -- tasks -----------------------------------------------------------------------------------------
    async def _own_task(
        self, conn: asyncpg.Connection, agent_id: str, task_id: str, states: tuple[TaskState, ...]
    ) -> tuple[repo.AgentRow | None, repo.TaskRow]:
        """The agent row as locked here (for ``refresh_state_load``), and the task."""
        # Lock order is agent row, then task rows, everywhere (the decisions consumer too): taking the
        # task first here and the agent in refresh_state deadlocked against the consumer under load.
        locked = await repo.get_agent(conn, agent_id, lock=True)
        task = await repo.get_task(conn, agent_id, task_id)
        if task is None:
            raise await self._not_mine(conn, agent_id, task_id, "task")
        if task.state not in states:
            raise ActionError(409, "task_not_" + states[0].value, f"the task is {task.state.value}")
        return locked, task

    async def complete(self, agent: repo.AgentRow, cmd: CompleteCommand) -> dict[str, Any]:
        bot = agent.record.kind is AgentKind.BOT
        async with self._pool.acquire() as conn, conn.transaction():
            locked, task = await self._own_task(conn, agent.id, cmd.task_id, (TaskState.ASSIGNED,))
            # Bots have no after-contact work: their tasks skip wrap-up.
            await repo.set_task_state(conn, task.task_id, TaskState.DONE if bot else TaskState.WRAPUP)
            refreshed = await repo.refresh_state_load(conn, agent.id, "agent", locked=locked)
            assert refreshed is not None
            updated, load = refreshed
            await self._publish_inbox(
                agent,
                TaskCompleted(
                    task_id=task.task_id,
                    agent_id=agent.id,
                    close_conversation=cmd.close_conversation,
                    disposition=cmd.disposition,
                ),
                correlation_id=task.correlation_id,
            )
            if bot:
                await self._publish_inbox(
                    agent,
                    WrapupDone(task_id=task.task_id, agent_id=agent.id),
                    correlation_id=task.correlation_id,
                )
            await self._append_state(conn, updated, str(uuid.uuid4()), load)
        return {"task_id": task.task_id, "state": (TaskState.DONE if bot else TaskState.WRAPUP).value}

    async def wrapup_done(self, agent: repo.AgentRow, cmd: WrapupDoneCommand) -> dict[str, Any]:
        async with self._pool.acquire() as conn, conn.transaction():
            locked, task = await self._own_task(conn, agent.id, cmd.task_id, (TaskState.WRAPUP,))
            await repo.set_task_state(conn, task.task_id, TaskState.DONE)
            refreshed = await repo.refresh_state_load(conn, agent.id, "agent", locked=locked)
            assert refreshed is not None
            updated, load = refreshed
            await self._publish_inbox(
                agent, WrapupDone(task_id=task.task_id, agent_id=agent.id), correlation_id=task.correlation_id
            )
            await self._append_state(conn, updated, str(uuid.uuid4()), load)
        return {"task_id": task.task_id, "state": TaskState.DONE.value}

    async def transfer(self, agent: repo.AgentRow, cmd: TransferCommand) -> dict[str, Any]:
        if cmd.to_agent_id == agent.id:
            raise ActionError(422, "invalid_transfer", "a task cannot be transferred to its own agent")
        async with self._pool.acquire() as conn, conn.transaction():
            _, task = await self._own_task(conn, agent.id, cmd.task_id, (TaskState.ASSIGNED,))
            if cmd.to_agent_id is not None and await repo.get_agent(conn, cmd.to_agent_id) is None:
                raise ActionError(422, "unknown_agent", f"no agent {cmd.to_agent_id!r}")
            await repo.set_task_state(conn, task.task_id, TaskState.TRANSFERRED)
            updated = await repo.refresh_state(conn, agent.id, "agent")
            assert updated is not None
            await self._publish_inbox(
                agent,
                TransferRequested(
                    task_id=task.task_id,
                    from_agent_id=agent.id,
                    to_agent_id=cmd.to_agent_id,
                    to_queue=cmd.to_queue,
                    intent=cmd.intent,
                    transcript=cmd.transcript,
                    note=cmd.note,
                ),
                correlation_id=task.correlation_id,
            )
            await self._append_state(conn, updated, str(uuid.uuid4()))
        return {"task_id": task.task_id, "state": TaskState.TRANSFERRED.value}

    async def reply(self, agent: repo.AgentRow, cmd: ReplyCommand) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            _, task = await self._own_task(
                conn, agent.id, cmd.task_id, (TaskState.ASSIGNED, TaskState.WRAPUP)
            )
        view = task.task
        if not view.get("reply_to"):
            raise ActionError(409, "no_reply_address", "the task has no address to reply to")
        reply_id = cmd.reply_id or str(uuid.uuid4())
        request = ReplyRequested(
            reply_id=reply_id,
            customer_id=task.customer_id,
            conversation_id=task.conversation_id,
            task_id=task.task_id,
            author=f"{'bot' if agent.record.kind is AgentKind.BOT else 'agent'}:{agent.id}",
            channel=Channel(task.channel),
            to=Address.model_validate(view["reply_to"]),
            from_=Address.model_validate(view["reply_from"]) if view.get("reply_from") else None,
            subject=cmd.subject,
            text=cmd.text,
            attachments=cmd.attachments,
        )
        env = new_envelope(
            request,
            producer=PRODUCER,
            event_id=_event_id("reply.requested", agent.id, reply_id),
            correlation_id=task.correlation_id,
            routing_domain=agent.record.routing_domain,
        )
        try:
            await self._producer.publish(Topic.REPLIES_OUTBOUND, task.customer_id, env)
        except BrokerUnavailable as exc:
            raise ActionError(503, "broker_unavailable", "the reply could not be queued; retry") from exc
        async with self._pool.acquire() as conn:
            await repo.record_reply(
                conn,
                task.task_id,
                {
                    "reply_id": reply_id,
                    "text": cmd.text,
                    "subject": cmd.subject,
                    "sent_at": env.occurred_at.isoformat(),
                },
            )
        return {"reply_id": reply_id, "task_id": task.task_id, "queued": True}

    # -- resume ----------------------------------------------------------------------------------------
    async def snapshot(self, agent_id: str) -> tuple[int, list[dict[str, Any]]]:
        """The frames that bring a (re)connecting desktop up to date, and the feed position they cover:
        state, every live offer, every active task. Read in one snapshot so nothing falls between."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            agent = await repo.get_agent(conn, agent_id)
            if agent is None:
                raise ActionError(404, "not_found", "no such agent")
            load, _ = await repo.load_by_channel(conn, agent_id)
            offers = await repo.pending_offers(conn, agent_id)
            tasks = await repo.active_tasks(conn, agent_id)
        frames: list[dict[str, Any]] = [
            {
                **state_frame(agent, load),
                "snapshot": True,
                "heartbeat_interval_s": self._settings.heartbeat_interval_s,
            }
        ]
        frames += [
            {
                "type": "offer",
                "offer_id": o.offer_id,
                "expires_at": o.expires_at.isoformat(),
                "task": o.task,
                "resumed": True,
            }
            for o in offers
        ]
        frames += [
            {
                "type": "assigned",
                "task_id": t.task_id,
                "task": t.task,
                "state": t.state.value,
                "resumed": True,
            }
            for t in tasks
        ]
        return agent.feed_seq, frames

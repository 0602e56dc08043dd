"""Consumer of omni.routing.decisions (group "agent-presence"): persists offers and assignments and
appends the desktop's frame to the agent's feed, all in one transaction with the event-id claim, so a
redelivered decision changes nothing and is pushed once. The feed row's NOTIFY reaches whichever replica
holds the agent's WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import asyncpg
from pydantic import BaseModel

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

_Item = tuple[Consumed, Envelope, Decision]


def _task_of(payload: BaseModel) -> str | None:
    task_id = getattr(payload, "task_id", None)
    if task_id is None:
        task_id = getattr(getattr(payload, "task", None), "id", None)
    return task_id if isinstance(task_id, str) else None


def _groups(todo: Sequence[_Item]) -> list[list[_Item]]:
    """Split a batch into groups that share no agent and no task, each in log order: a task that moves
    between agents (transfer) keeps its decisions in one group, so they apply in the order routing made
    them; different groups touch different rows and can commit in any order."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        parent[x] = root
        return root

    for _, _, d in todo:
        agent = find(f"agent:{d.agent_id}")
        task = _task_of(d.payload)
        if task is not None:
            parent[find(f"task:{task}")] = agent
    groups: dict[str, list[_Item]] = {}
    for entry in todo:
        groups.setdefault(find(f"agent:{entry[2].agent_id}"), []).append(entry)
    return list(groups.values())


class DecisionHandler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        away_reasons: tuple[str, ...],
        webhook_for: Callable[[repo.AgentRow], bool],
        parallel: int = 4,
    ) -> None:
        self._pool = pool
        self._away_reasons = away_reasons
        self._webhook_for = webhook_for
        #: Groups applied at once; the rest of the pool stays for the agents' actions and pushes.
        self._parallel = asyncio.Semaphore(parallel)
        #: Rejections of groups that committed in an attempt another group failed (see __call__).
        self._carried: list[Rejection] = []

    async def __call__(self, batch: Sequence[Consumed]) -> Sequence[Rejection]:
        todo: list[_Item] = []
        for item in batch:
            if item.envelope is None or item.payload is None:
                continue
            decision = decision_for(item.payload)
            if decision is not None:
                todo.append((item, item.envelope, decision))
        if not todo:
            return []
        # One short transaction per group of related decisions, groups side by side: one transaction for
        # the whole batch held every agent row of the batch for its whole length, so each agent action
        # (which locks its agent row while routing acknowledges the event) waited for the batch and the
        # next batch waited for the actions: the consumer fell behind at 100 contacts/s.
        outcomes = await asyncio.gather(
            *(self._apply_group(g) for g in _groups(todo)), return_exceptions=True
        )
        rejections: list[Rejection] = []
        failure: BaseException | None = None
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                failure = failure or outcome
            else:
                rejections += outcome
        if failure is not None:
            # Transient: the loop retries the batch. The groups that committed claimed their events,
            # so the retry skips them: keep their poison for the retry to return, or it would be lost.
            self._carried += rejections
            raise failure
        carried, self._carried = self._carried, []
        return carried + rejections

    async def _apply_group(self, group: Sequence[_Item]) -> list[Rejection]:
        rejections: list[Rejection] = []
        async with self._parallel, self._pool.acquire() as conn, conn.transaction():
            # Lock the group's agent rows up front, in one order (the actions lock one agent row before
            # its tasks): two transactions never wait on each other in a cycle.
            agents = await repo.lock_agents(conn, sorted({d.agent_id for _, _, d in group}))
            claimed = await claim_events(conn, GROUP_ID, [env.event_id for _, env, _ in group])
            for item, env, decision in group:
                if env.event_id not in claimed:
                    continue
                claimed.discard(env.event_id)  # a duplicate inside the batch is applied once
                reason = await self._apply(conn, env, decision, agents)
                if reason is not None:
                    rejections.append(Rejection(item, reason))
        return rejections

    async def _apply(
        self, conn: asyncpg.Connection, env: Envelope, decision: Decision, agents: dict[str, repo.AgentRow]
    ) -> str | None:
        # Locked by this transaction and kept current below: no need to read it again per decision.
        agent = agents.get(decision.agent_id)
        if agent is None:
            return f"agent {decision.agent_id!r} is not in the roster"
        payload = decision.payload
        cid = env.correlation_id
        refresh = False
        refreshed: tuple[repo.AgentRow, dict[str, int]] | None = None
        updated: repo.AgentRow | None = None
        load: dict[str, int] = {}
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
                # Routing closes a completed task as soon as it hears TaskCompleted, while the agent is
                # still in wrap-up: that stays until the agent's wrapup_done (which routing waits for,
                # holding the agent's slot up to its wrap-up limit). Closing it here refused that
                # wrapup_done (409) and kept the agent from new work until the limit.
                await repo.set_task_state(
                    conn, payload.task_id, TaskState.CLOSED, only_from=(TaskState.ASSIGNED,)
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
                refreshed = await repo.refresh_state_load(
                    conn, agent.id, "routing", status=status, reason=reason, locked=agent
                )
        if refresh:
            refreshed = await repo.refresh_state_load(conn, agent.id, "routing", locked=agent)
        if refreshed is not None:
            updated, load = refreshed
            agents[agent.id] = updated
        frame = {**decision.frame, "event_id": env.event_id}
        webhook = self._webhook_for(agent)
        await repo.append_feed(conn, agent.id, env.event_id, frame, webhook=webhook)
        if updated is not None and (updated.state, updated.status) != (agent.state, agent.status):
            # The desktop shows busy / wrap-up / forced states as they follow from routing's decisions
            # (the load refresh_state counted: no task changed since).
            await repo.append_feed(
                conn, agent.id, f"{env.event_id}:state", state_frame(updated, load), webhook=webhook
            )
        return None

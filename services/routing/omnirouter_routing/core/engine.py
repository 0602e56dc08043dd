"""The routing engine: input events and an injected clock in, ordered decisions out. No I/O.

One engine serves one routing domain (one inbox partition), called by a single writer, so there are no
locks: capacity checks and offers happen in the same step and can never race (pain #5).

Determinism: time comes only from the ``now`` passed in (clamped so it never goes backwards); every
choice among agents or tasks is a minimum over a total order ending in an id, so neither dict/set order
nor hash seeds change a decision; derived ids are uuid5 of the causing event.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from omnirouter_routing.config import ClosedAction, QueueConfig, RoutingConfig, SelectionStrategy
from omnirouter_routing.core import capacity
from omnirouter_routing.core.decisions import Decision, decision_ids, derive_id
from omnirouter_routing.core.intents import IntentMatcher
from omnirouter_routing.core.matching import fits, rank_key
from omnirouter_routing.core.payloads import assemble
from omnirouter_routing.core.ready import ReadyIndex
from omnirouter_routing.core.snapshot import dump_state, load_state
from omnirouter_routing.core.state import (
    Agent,
    Conversation,
    Offer,
    QueueCounters,
    RoutingState,
    Task,
    TaskPhase,
)
from omnirouter_routing.core.stats import RoutingStats, compute_stats
from omnirouter_routing.core.timers import TimerKind, Timers
from omnirouter_routing.core.views import message_of, task_view
from omnirouter_routing.core.waiting import WaitingIndex, effective_priority, wait_key
from omnirouter_shared.contracts.agents import (
    AgentKind,
    AgentStatus,
    AgentStatusChanged,
    AgentUpserted,
    OfferAccepted,
    OfferRejected,
    TaskCompleted,
    TransferRequested,
    WrapupDone,
)
from omnirouter_shared.contracts.common import LIVE_CHANNELS
from omnirouter_shared.contracts.identity import (
    CustomerErased,
    CustomersMerged,
    CustomerSplit,
    InteractionResolved,
    InteractionStatusResolved,
)
from omnirouter_shared.contracts.interactions import InteractionStatus
from omnirouter_shared.contracts.routing import (
    AgentStateForced,
    ConversationMessage,
    OfferRescinded,
    RoutingTick,
    TaskAssigned,
    TaskClosed,
    TaskOffered,
    TaskQueued,
)

_HELD = (TaskPhase.OFFERED, TaskPhase.ASSIGNED, TaskPhase.WRAPUP)
_ENDED_CALL = (InteractionStatus.ABANDONED, InteractionStatus.COMPLETED)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _remember(ids: OrderedDict[str, None], key: str, limit: int) -> None:
    ids[key] = None
    while len(ids) > limit:
        ids.popitem(last=False)


class RoutingEngine:
    """The routing core of one routing domain.

    ``handle`` applies one input event and returns the decisions it caused, in order; an event id seen
    recently is ignored (redelivery after a crash). ``snapshot``/``restore`` round-trip the full state;
    ``reconfigure`` swaps the configuration keeping every task.
    """

    def __init__(self, config: RoutingConfig, state: RoutingState | None = None) -> None:
        self._config = config
        self._state = state if state is not None else RoutingState()
        self._intents = IntentMatcher(config)
        self._last_agent_memory = timedelta(seconds=config.timers.last_agent_memory)
        self._waiting = WaitingIndex()
        self._timers = Timers()
        self._ready = ReadyIndex()
        self._by_customer: dict[str, str] = {}
        self._by_interaction: dict[str, str] = {}
        self._out: list[tuple[str, BaseModel]] = []
        self._now = self._state.clock or datetime.fromtimestamp(0, UTC)
        #: After a reload, every ready agent is matched again at the next event (new rules may fit).
        self._redispatch_all = False
        self._handlers: dict[type[BaseModel], Callable[[Any], None]] = {
            InteractionResolved: self._on_interaction,
            InteractionStatusResolved: self._on_interaction_status,
            CustomersMerged: self._on_merged,
            CustomerSplit: self._on_split,
            CustomerErased: self._on_erased,
            AgentUpserted: self._on_agent_upserted,
            AgentStatusChanged: self._on_agent_status,
            OfferAccepted: self._on_accepted,
            OfferRejected: self._on_rejected,
            TaskCompleted: self._on_completed,
            WrapupDone: self._on_wrapup_done,
            TransferRequested: self._on_transfer,
            RoutingTick: self._on_tick,
        }
        self._rebuild_indexes()

    # ------------------------------------------------------------------ public API

    @property
    def config(self) -> RoutingConfig:
        return self._config

    @property
    def state(self) -> RoutingState:
        """The live state (read it, never mutate it from outside)."""
        return self._state

    def handle(self, event_id: str, payload: BaseModel, now: datetime) -> list[Decision]:
        st = self._state
        if event_id in st.recent_events:
            return []
        now = _aware(now)
        if st.clock is None or now > st.clock:
            st.clock = now
        self._now = st.clock
        _remember(st.recent_events, event_id, self._config.dedup_window)
        self._out = []
        if self._timers.next_due_by(self._now):
            self._run_timers()
        if self._redispatch_all:
            self._redispatch_all = False
            for agent_id in list(self._ready):
                self._dispatch_agent(st.agents[agent_id])
        handler = self._handlers.get(type(payload))
        if handler is not None:
            handler(payload)
        # A handler may make a time-out due right away (a re-queued task whose escalation step passed).
        if self._timers.next_due_by(self._now):
            self._run_timers()
        la = st.last_agent
        if la and next(iter(la.values()))[1] <= self._now - self._last_agent_memory:
            self._prune_last_agents()
        out, self._out = self._out, []
        if not out:
            return []
        ids = decision_ids(event_id, len(out))
        return [Decision(ids[i], key, p) for i, (key, p) in enumerate(out)]

    def snapshot(self) -> bytes:
        return dump_state(self._state)

    @classmethod
    def restore(cls, config: RoutingConfig, data: bytes) -> RoutingEngine:
        return cls(config, load_state(data))

    def reconfigure(self, config: RoutingConfig) -> None:
        """Use a new configuration from the next event on; tasks, conversations and agents are kept.

        Tasks in a queue that no longer exists move to the default queue (never lost). Re-matching
        happens at the next event so its decisions get that event's ids and stay replayable.
        """
        self._config = config
        self._intents = IntentMatcher(config)
        self._last_agent_memory = timedelta(seconds=config.timers.last_agent_memory)
        for task in self._state.tasks.values():
            if task.queue not in config.queues:
                task.queue = config.default_queue
                task.step = 0
            task.step = min(task.step, len(config.queue(task.queue).escalation))
        self._rebuild_indexes()
        self._redispatch_all = True

    def stats(self, now: datetime) -> RoutingStats:
        return compute_stats(self._state, self._waiting, self._config, _aware(now))

    def waiting_in_order(self, queue: str) -> list[str]:
        """Task ids waiting in ``queue``, next served first."""
        return list(self._waiting.in_order(queue))

    # ------------------------------------------------------------------ indexes

    def _rebuild_indexes(self) -> None:
        st = self._state
        self._waiting = WaitingIndex()
        self._timers = Timers()
        self._ready = ReadyIndex()
        self._by_customer = {c.customer_id: c.id for c in st.conversations.values()}
        self._by_interaction = {}
        for task in st.tasks.values():
            for iid in task.interaction_ids:
                self._by_interaction[iid] = task.id
            if task.phase is TaskPhase.WAITING:
                self._waiting.add(task.queue, self._wait_key(task))
            self._schedule_task_timers(task)
        for conv in st.conversations.values():
            if conv.task_id is None:
                self._schedule_window(conv)
        for agent in st.agents.values():
            self._refresh_ready(agent)

    def _schedule_task_timers(self, task: Task) -> None:
        t = self._timers
        if task.phase is TaskPhase.OFFERED and task.offer is not None:
            t.push(task.offer.expires_at, TimerKind.OFFER_EXPIRY, task.id)
        elif task.phase is TaskPhase.WRAPUP and task.wrapup_until is not None:
            t.push(task.wrapup_until, TimerKind.WRAPUP_END, task.id)
        elif task.phase is TaskPhase.WAITING:
            steps = self._qc(task).escalation
            if task.step < len(steps):
                due = task.queue_entered_at + timedelta(seconds=steps[task.step].after)
                t.push(due, TimerKind.ESCALATION, task.id)
            if task.preferred_until is not None:
                t.push(task.preferred_until, TimerKind.PREFERRED_END, task.id)
            if task.bot_phase and task.bot_until is not None:
                t.push(task.bot_until, TimerKind.BOT_END, task.id)
            if task.declined:
                t.push(min(task.declined.values()), TimerKind.DECLINE_END, task.id)

    def _schedule_window(self, conv: Conversation) -> None:
        due = conv.last_message_at + self._config.window(conv.last_channel)
        self._timers.push(due, TimerKind.CONVERSATION_WINDOW, conv.id)

    def _refresh_ready(self, agent: Agent) -> None:
        # A cheap pre-filter (fits() checks the exact channel rules): humans with units left, bots with
        # any channel slot left.
        cap = self._config.capacity
        if (
            agent.enabled
            and agent.status is AgentStatus.AVAILABLE
            and (
                agent.used_units < cap.units
                if agent.kind is AgentKind.HUMAN
                else capacity.has_any_room(agent, cap)
            )
        ):
            self._ready.put(agent, cap)
        else:
            self._ready.discard(agent.id)

    # ------------------------------------------------------------------ helpers

    def _qc(self, task: Task) -> QueueConfig:
        return self._config.queue(task.queue)

    def _priority(self, task: Task) -> int:
        return self._qc(task).priority + self._config.channel_priority.get(task.channel, 0) + task.boost

    def _wait_key(self, task: Task) -> tuple[float, float, str]:
        return wait_key(self._priority(task), self._qc(task).aging_per_minute, task.enqueued_at, task.id)

    def _counters(self, queue: str) -> QueueCounters:
        c = self._state.counters.get(queue)
        if c is None:
            c = self._state.counters[queue] = QueueCounters()
        return c

    def _emit(self, key: str, payload: BaseModel) -> None:
        self._out.append((key, payload))

    def _queued(self, task: Task, reason: str) -> None:
        self._emit(
            task.id,
            assemble(
                TaskQueued,
                task_id=task.id,
                conversation_id=task.conversation_id,
                customer_id=task.customer_id,
                queue=task.queue,
                priority=self._priority(task),
                channel=task.channel,
                reason=reason,
            ),
        )

    def _closed(self, task: Task, reason: str, agent_id: str | None) -> None:
        self._emit(
            agent_id or task.id,
            assemble(
                TaskClosed,
                task_id=task.id,
                conversation_id=task.conversation_id,
                customer_id=task.customer_id,
                agent_id=agent_id,
                reason=reason,
            ),
        )

    def _agent_reachable(self, agent_id: str | None) -> bool:
        """Whether waiting for this agent makes sense: known, enabled and not offline (pain #2)."""
        if agent_id is None:
            return False
        agent = self._state.agents.get(agent_id)
        return agent is not None and agent.enabled and agent.status is not AgentStatus.OFFLINE

    def _preferred_active(self, task: Task) -> bool:
        return (
            task.preferred_agent is not None
            and task.preferred_until is not None
            and task.preferred_until > self._now
            and self._agent_reachable(task.preferred_agent)
        )

    # ------------------------------------------------------------------ capacity

    def _charge(self, task: Task, agent: Agent) -> None:
        units = self._config.capacity.weight(task.channel) if agent.kind is AgentKind.HUMAN else 0
        capacity.charge(agent, task.channel, units)
        task.agent_id = agent.id
        task.charged_units = units
        task.charged_channel = task.channel
        agent.tasks.append(task.id)
        self._refresh_ready(agent)

    def _release(self, task: Task) -> Agent | None:
        agent = self._state.agents.get(task.agent_id) if task.agent_id else None
        if agent is not None and task.charged_channel is not None:
            capacity.release(agent, task.charged_channel, task.charged_units)
            agent.tasks.remove(task.id)
            if not agent.tasks:
                agent.idle_since = self._now
            self._refresh_ready(agent)
        task.agent_id = None
        task.charged_units = 0
        task.charged_channel = None
        task.offer = None
        return agent

    # ------------------------------------------------------------------ queueing and matching

    def _enqueue(self, task: Task, reason: str) -> None:
        """Put ``task`` (back) in line at its original place and offer it if someone fits now."""
        now = self._now
        task.phase = TaskPhase.WAITING
        task.offer = None
        if task.preferred_until is not None and (
            task.preferred_until <= now or not self._agent_reachable(task.preferred_agent)
        ):
            task.preferred_agent = task.preferred_until = None
        if task.bot_phase and task.bot_until is not None and task.bot_until <= now:
            task.bot_phase, task.bot_until = False, None
        if task.declined:
            task.declined = {a: u for a, u in task.declined.items() if u > now}
        self._waiting.add(task.queue, self._wait_key(task))
        self._schedule_task_timers(task)
        self._queued(task, reason)
        self._dispatch_task(task)

    def _dispatch_task(self, task: Task) -> None:
        if task.phase is not TaskPhase.WAITING:
            return
        agents = self._state.agents
        cap = self._config.capacity
        now = self._now
        if self._preferred_active(task):
            assert task.preferred_agent is not None
            agent = agents[task.preferred_agent]
            if task.preferred_agent in self._ready and fits(agent, task, cap, now, as_preferred=True):
                self._offer(task, agent)
            return
        qc = self._qc(task)
        cursor = self._state.rr_cursor.get(task.queue)
        best: Agent | None = None
        if qc.strategy is SelectionStrategy.HIGHEST_PROFICIENCY:
            best_key: tuple[float | int | str, ...] | None = None
            for agent_id in self._ready:
                agent = agents[agent_id]
                if fits(agent, task, cap, now, as_preferred=False):
                    key = rank_key(agent, task, qc.strategy, cap, cursor)
                    if best_key is None or key < best_key:
                        best, best_key = agent, key
        else:
            # Agents come in the strategy's order: the first fit wins unless a later one holds more of
            # the task's preferred skills (the same order ``rank_key`` defines, without a full scan).
            if qc.strategy is SelectionStrategy.LONGEST_IDLE:
                order = self._ready.longest_idle()
            elif qc.strategy is SelectionStrategy.LEAST_OCCUPIED:
                order = self._ready.least_occupied()
            else:
                order = self._ready.round_robin(cursor)
            wanted = task.preferred
            best_pref = -1
            for agent_id in order:
                agent = agents[agent_id]
                if not fits(agent, task, cap, now, as_preferred=False):
                    continue
                skills = agent.skills
                pref = sum(1 for s, level in wanted.items() if skills.get(s, 0) >= level) if wanted else 0
                if pref > best_pref:
                    best, best_pref = agent, pref
                    if pref == len(wanted):
                        break
        if best is not None:
            self._offer(task, best)

    def _may_take(self, agent: Agent, task: Task) -> bool:
        if self._preferred_active(task):
            return task.preferred_agent == agent.id and fits(
                agent, task, self._config.capacity, self._now, as_preferred=True
            )
        return fits(agent, task, self._config.capacity, self._now, as_preferred=False)

    def _dispatch_agent(self, agent: Agent) -> None:
        """Offer the agent the best waiting work that fits them, while they have room (pain #1)."""
        tasks = self._state.tasks
        now = self._now
        while agent.id in self._ready:
            best: Task | None = None
            best_key: tuple[float, float, str] | None = None
            for queue in self._waiting.queues():
                aging = self._config.queue(queue).aging_per_minute
                for task_id in self._waiting.in_order(queue):
                    task = tasks[task_id]
                    if not self._may_take(agent, task):
                        continue
                    prio = effective_priority(self._priority(task), aging, task.enqueued_at, now)
                    key = (-prio, task.enqueued_at.timestamp(), task.id)
                    if best_key is None or key < best_key:
                        best, best_key = task, key
                    break  # the first fit is this queue's best for this agent
            if best is None:
                return
            self._offer(best, agent)

    def _offer(self, task: Task, agent: Agent) -> None:
        task.offer_seq += 1
        offer_id = derive_id(task.id, "offer", str(task.offer_seq))
        expires = self._now + timedelta(seconds=self._config.offer_timeout(task.queue))
        self._waiting.remove(task.id)
        task.phase = TaskPhase.OFFERED
        self._charge(task, agent)
        task.offer = Offer(offer_id, agent.id, expires)
        self._counters(task.queue).offers += 1
        self._state.rr_cursor[task.queue] = agent.id
        self._timers.push(expires, TimerKind.OFFER_EXPIRY, task.id)
        self._emit(
            agent.id,
            assemble(
                TaskOffered,
                offer_id=offer_id,
                agent_id=agent.id,
                task=task_view(task, self._priority(task)),
                expires_at=expires,
            ),
        )

    def _rescind(self, task: Task, reason: str) -> Agent | None:
        """End a live offer (the task is left for the caller to re-queue or close)."""
        offer = task.offer
        agent = self._release(task)
        if offer is not None:
            self._emit(
                offer.agent_id,
                assemble(
                    OfferRescinded,
                    offer_id=offer.offer_id,
                    task_id=task.id,
                    agent_id=offer.agent_id,
                    reason=reason,
                ),
            )
        return agent

    def _offer_missed(self, task: Task, reason: str) -> None:
        """Time-out or rejection: back in line at the original place; N misses in a row force away."""
        offer = task.offer
        assert offer is not None
        agent = self._rescind(task, reason)
        timers = self._config.timers
        task.declined[offer.agent_id] = self._now + timedelta(seconds=timers.decline_cooldown)
        self._counters(task.queue).missed_offers += 1
        if agent is not None and (reason == "timeout" or timers.count_rejects_as_missed):
            agent.missed_in_row += 1
            if agent.missed_in_row >= timers.max_missed_offers and agent.status is AgentStatus.AVAILABLE:
                self._force_away(agent, "missed_offers")
        self._enqueue(task, f"requeued_{reason}")
        if agent is not None:
            self._dispatch_agent(agent)

    def _force_away(self, agent: Agent, reason: str) -> None:
        agent.status = AgentStatus.AWAY
        self._refresh_ready(agent)
        self._emit(agent.id, assemble(AgentStateForced, agent_id=agent.id, status="away", reason=reason))
        self._requeue_offers_of(agent, "agent_away")

    def _requeue_offers_of(self, agent: Agent, reason: str) -> None:
        tasks = self._state.tasks
        for task_id in list(agent.tasks):
            task = tasks[task_id]
            if task.phase is TaskPhase.OFFERED:
                self._rescind(task, reason)
                self._enqueue(task, f"requeued_{reason}")

    def _drop_task(self, task: Task) -> Agent | None:
        """Forget a finished task entirely, freeing whatever it held."""
        self._waiting.remove(task.id)
        agent = self._release(task)
        for iid in task.interaction_ids:
            if self._by_interaction.get(iid) == task.id:
                del self._by_interaction[iid]
        self._state.tasks.pop(task.id, None)
        conv = self._state.conversations.get(task.conversation_id)
        if conv is not None and conv.task_id == task.id:
            conv.task_id = None
            self._schedule_window(conv)
        return agent

    def _close_conversation(self, conv: Conversation) -> None:
        st = self._state
        st.conversations.pop(conv.id, None)
        if self._by_customer.get(conv.customer_id) == conv.id:
            del self._by_customer[conv.customer_id]

    def _remember_agent(self, conv: Conversation, agent_id: str) -> None:
        if self._state.agents[agent_id].kind is AgentKind.HUMAN:
            conv.last_agent_id = agent_id
            la = self._state.last_agent
            la[conv.customer_id] = (agent_id, self._now)
            la.move_to_end(conv.customer_id)

    def _prune_last_agents(self) -> None:
        la = self._state.last_agent
        horizon = self._now - self._last_agent_memory
        while la:
            customer, (_, at) = next(iter(la.items()))
            if at > horizon:
                return
            del la[customer]

    # ------------------------------------------------------------------ timers

    def _run_timers(self) -> None:
        """Fire due time-outs in (due, kind, ref) order. An entry fires only if the state still has that
        exact due time: stale entries (an offer re-made later, a step already applied) must not fire
        early, or a restored engine (which only has current entries) would decide differently."""
        st = self._state
        now = self._now
        while (entry := self._timers.pop_due(now)) is not None:
            due, kind, ref = entry
            if kind == TimerKind.CONVERSATION_WINDOW:
                conv = st.conversations.get(ref)
                if (
                    conv is not None
                    and conv.task_id is None
                    and conv.last_message_at + self._config.window(conv.last_channel) == due
                ):
                    self._close_conversation(conv)
                continue
            task = st.tasks.get(ref)
            if task is None:
                continue
            if kind == TimerKind.OFFER_EXPIRY:
                if task.phase is TaskPhase.OFFERED and task.offer and task.offer.expires_at == due:
                    self._offer_missed(task, "timeout")
            elif kind == TimerKind.WRAPUP_END:
                if task.phase is TaskPhase.WRAPUP and task.wrapup_until == due:
                    self._finish_wrapup(task)
            elif task.phase is not TaskPhase.WAITING:
                continue  # waiting-only timers are scheduled again when the task is re-queued
            elif kind == TimerKind.ESCALATION:
                steps = self._qc(task).escalation
                if (
                    task.step < len(steps)
                    and task.queue_entered_at + timedelta(seconds=steps[task.step].after) == due
                ):
                    self._escalate(task)
            elif kind == TimerKind.PREFERRED_END:
                if task.preferred_until == due:
                    task.preferred_agent = task.preferred_until = None
                    self._dispatch_task(task)
            elif kind == TimerKind.BOT_END:
                if task.bot_phase and task.bot_until == due:
                    task.bot_phase, task.bot_until = False, None
                    self._dispatch_task(task)
            elif kind == TimerKind.DECLINE_END and task.declined and min(task.declined.values()) == due:
                task.declined = {a: u for a, u in task.declined.items() if u > now}
                if task.declined:
                    self._timers.push(min(task.declined.values()), TimerKind.DECLINE_END, task.id)
                self._dispatch_task(task)

    def _escalate(self, task: Task) -> None:
        """Apply every escalation step now due: widen requirements, boost, or overflow."""
        steps = self._qc(task).escalation
        now = self._now
        applied = False
        while task.step < len(steps):
            step = steps[task.step]
            if task.queue_entered_at + timedelta(seconds=step.after) > now:
                break
            task.step += 1
            applied = True
            for skill in step.drop_skills:
                level = task.required.pop(skill, None)
                if level is not None:
                    task.preferred.setdefault(skill, level)
            for skill, level in step.relax_skills.items():
                if skill in task.required:
                    task.required[skill] = min(task.required[skill], level)
            if step.drop_preferred_agent:
                task.preferred_agent = task.preferred_until = None
            task.boost += step.priority_boost
            if step.overflow_to and step.overflow_to != task.queue:
                self._move_to_queue(task, step.overflow_to)
                self._counters(task.queue).entered += 1
                steps = self._qc(task).escalation
        if applied:
            self._waiting.remove(task.id)
            self._enqueue(task, "escalated")

    def _move_to_queue(self, task: Task, queue: str) -> None:
        """Take the new queue's requirements (keeping skills an intent added) and restart its steps."""
        old = self._qc(task)
        new = self._config.queue(queue)
        extra = {s: v for s, v in task.required.items() if s not in old.required_skills}
        task.queue = queue if queue in self._config.queues else self._config.default_queue
        task.required = {**new.required_skills, **extra}
        task.preferred = dict(new.preferred_skills)
        task.queue_entered_at = self._now
        task.step = 0

    def _finish_wrapup(self, task: Task) -> None:
        agent = self._drop_task(task)
        if agent is not None:
            self._dispatch_agent(agent)

    # ------------------------------------------------------------------ customer side

    def _on_interaction(self, event: InteractionResolved) -> None:
        st = self._state
        now = self._now
        inter = event.interaction
        customer_id = event.customer.customer_id
        message = message_of(event)
        conv_id = self._by_customer.get(customer_id)
        conv = st.conversations.get(conv_id) if conv_id else None
        if conv is not None:
            conv.last_message_at = now
            conv.last_channel = inter.channel
            task = st.tasks.get(conv.task_id) if conv.task_id else None
            if task is not None and task.phase is not TaskPhase.WRAPUP:
                self._join(task, event, message)
                return
        new_conversation = conv is None
        if conv is None:
            conv = Conversation(
                id=derive_id("conversation", inter.interaction_id),
                customer_id=customer_id,
                opened_at=now,
                last_message_at=now,
                last_channel=inter.channel,
                task_id=None,
            )
        task = self._new_task(event, conv, message, new_conversation)
        if task is None:
            if not new_conversation:
                self._schedule_window(conv)
            return
        if new_conversation:
            st.conversations[conv.id] = conv
            self._by_customer[customer_id] = conv.id
        conv.task_id = task.id
        st.tasks[task.id] = task
        self._by_interaction[inter.interaction_id] = task.id
        self._counters(task.queue).entered += 1
        self._enqueue(task, "new")

    def _join(self, task: Task, event: InteractionResolved, message: Any) -> None:
        """A new contact of a customer with an open task joins it: one conversation per customer."""
        inter = event.interaction
        task.messages.append(message)
        del task.messages[: -self._config.max_messages_per_task]
        task.interaction_ids.append(inter.interaction_id)
        self._by_interaction[inter.interaction_id] = task.id
        task.reply_to, task.reply_from = inter.sender, inter.recipient
        if task.phase is TaskPhase.ASSIGNED:
            assert task.agent_id is not None
            self._emit(
                task.agent_id,
                assemble(
                    ConversationMessage,
                    task_id=task.id,
                    agent_id=task.agent_id,
                    conversation_id=task.conversation_id,
                    message=message,
                ),
            )
        elif inter.channel in LIVE_CHANNELS and task.channel not in LIVE_CHANNELS:
            # The customer is now on the line: the task takes the live channel (and its priority) but
            # keeps its place; an offer made for the asynchronous channel no longer fits the work.
            if task.phase is TaskPhase.OFFERED:
                self._rescind(task, "channel_changed")
            self._waiting.remove(task.id)
            task.channel = inter.channel
            self._enqueue(task, "live_channel")

    def _new_task(
        self, event: InteractionResolved, conv: Conversation, message: Any, new_conversation: bool
    ) -> Task | None:
        cfg = self._config
        now = self._now
        inter = event.interaction
        text = " ".join(p for p in (inter.subject, inter.text) if p)
        intent = self._intents.match(text)
        queue = intent.queue if intent and intent.queue else None
        if queue is None:
            queue = next((e.queue for e in cfg.entry if e.channel is inter.channel), cfg.default_queue)
        qc = cfg.queue(queue)
        task = Task(
            id=derive_id("task", inter.interaction_id),
            conversation_id=conv.id,
            customer_id=event.customer.customer_id,
            customer_name=event.customer.display_name,
            channel=inter.channel,
            queue=queue,
            required={**qc.required_skills, **(intent.skills if intent else {})},
            preferred=dict(qc.preferred_skills),
            intent=intent.name if intent else None,
            boost=intent.priority_boost if intent else 0,
            created_at=now,
            enqueued_at=now,
            queue_entered_at=now,
            messages=[message],
            history=event.recent_history,
            reply_to=inter.sender,
            reply_from=inter.recipient,
            interaction_ids=[inter.interaction_id],
        )
        hours = qc.business_hours
        if hours is not None and not hours.is_open(now):
            if hours.closed_action is ClosedAction.REJECT:
                self._counters(queue).rejected_closed += 1
                self._closed(task, "closed_hours", None)
                return None
            if hours.closed_action is ClosedAction.OVERFLOW and hours.overflow_to:
                self._move_to_queue(task, hours.overflow_to)
                qc = cfg.queue(task.queue)
        if qc.bot_first and new_conversation:
            task.bot_phase = True
            task.bot_until = now + timedelta(seconds=qc.bot_wait)
        else:
            last = conv.last_agent_id
            if last is None and (remembered := self._state.last_agent.get(task.customer_id)):
                last = remembered[0]
            if self._agent_reachable(last):
                task.preferred_agent = last
                task.preferred_until = now + timedelta(seconds=cfg.timers.last_agent_wait)
        return task

    def _on_interaction_status(self, event: InteractionStatusResolved) -> None:
        status = event.status
        if status.direction != "inbound" or status.status not in _ENDED_CALL:
            return
        task_id = self._by_interaction.get(status.interaction_id)
        task = self._state.tasks.get(task_id) if task_id else None
        if task is None or task.phase not in (TaskPhase.WAITING, TaskPhase.OFFERED):
            return
        if status.channel not in LIVE_CHANNELS:
            return
        ended = status.interaction_id
        others = [m for m in task.messages if m.interaction_id != ended]
        still_async = [m for m in others if m.channel not in LIVE_CHANNELS]
        if task.phase is TaskPhase.OFFERED:
            self._rescind(task, "abandoned")
        self._waiting.remove(task.id)
        if still_async and all(m.channel not in LIVE_CHANNELS for m in others):
            # The call ended but the customer's written message still needs an answer.
            task.channel = still_async[-1].channel
            self._enqueue(task, "live_channel_ended")
            return
        self._counters(task.queue).abandoned += 1
        self._closed(task, "abandoned", None)
        self._drop_task(task)

    def _on_merged(self, event: CustomersMerged) -> None:
        st = self._state
        if event.merge_id in st.applied_merges:
            return
        _remember(st.applied_merges, event.merge_id, self._config.dedup_window)
        survivor = event.survivor_id
        for merged in event.merged_ids:
            if merged == survivor:
                continue
            if survivor not in st.last_agent and merged in st.last_agent:
                st.last_agent[survivor] = st.last_agent[merged]
            st.last_agent.pop(merged, None)
            loser_id = self._by_customer.pop(merged, None)
            if loser_id is None:
                continue
            loser = st.conversations[loser_id]
            keeper_id = self._by_customer.get(survivor)
            if keeper_id is None:
                self._rekey(loser, survivor)
                continue
            keeper = st.conversations[keeper_id]
            if self._conv_rank(loser) > self._conv_rank(keeper):
                keeper, loser = loser, keeper
            self._fold(keeper, loser, survivor)

    def _conv_rank(self, conv: Conversation) -> int:
        task = self._state.tasks.get(conv.task_id) if conv.task_id else None
        if task is None:
            return 0
        return {TaskPhase.WAITING: 1, TaskPhase.OFFERED: 2, TaskPhase.ASSIGNED: 3}.get(task.phase, 0)

    def _rekey(self, conv: Conversation, customer_id: str) -> None:
        conv.customer_id = customer_id
        self._by_customer[customer_id] = conv.id
        for task in self._state.tasks.values():
            if task.conversation_id == conv.id:
                task.customer_id = customer_id

    def _fold(self, keeper: Conversation, loser: Conversation, survivor: str) -> None:
        st = self._state
        kept = st.tasks.get(keeper.task_id) if keeper.task_id else None
        other = st.tasks.get(loser.task_id) if loser.task_id else None
        keeper.opened_at = min(keeper.opened_at, loser.opened_at)
        if loser.last_message_at > keeper.last_message_at:
            keeper.last_message_at, keeper.last_channel = loser.last_message_at, loser.last_channel
        keeper.last_agent_id = keeper.last_agent_id or loser.last_agent_id
        st.conversations.pop(loser.id, None)
        self._rekey(keeper, survivor)
        for task in st.tasks.values():
            if task.conversation_id == loser.id:
                task.conversation_id = keeper.id
                task.customer_id = survivor
        if other is None or other.phase in (TaskPhase.ASSIGNED, TaskPhase.WRAPUP) or kept is None:
            # Two agents already working both halves keep working; no work is taken from anyone.
            return
        if other.phase is TaskPhase.OFFERED:
            self._rescind(other, "merged")
        self._waiting.remove(other.id)
        moved = sorted(other.messages, key=lambda m: (m.received_at, m.interaction_id))
        kept.messages = sorted([*kept.messages, *moved], key=lambda m: (m.received_at, m.interaction_id))
        del kept.messages[: -self._config.max_messages_per_task]
        kept.interaction_ids.extend(other.interaction_ids)
        for iid in other.interaction_ids:
            self._by_interaction[iid] = kept.id
        other.interaction_ids = []
        self._closed(other, "merged", None)
        self._drop_task(other)
        if kept.phase is TaskPhase.ASSIGNED and kept.agent_id is not None:
            for message in moved:
                self._emit(
                    kept.agent_id,
                    assemble(
                        ConversationMessage,
                        task_id=kept.id,
                        agent_id=kept.agent_id,
                        conversation_id=keeper.id,
                        message=message,
                    ),
                )
            return
        live = other.channel in LIVE_CHANNELS and kept.channel not in LIVE_CHANNELS
        if live or other.enqueued_at < kept.enqueued_at:
            # The folded customer keeps the better of the two places in line and any live channel.
            if kept.phase is TaskPhase.OFFERED:
                self._rescind(kept, "merged")
            self._waiting.remove(kept.id)
            kept.enqueued_at = min(kept.enqueued_at, other.enqueued_at)
            if live:
                kept.channel = other.channel
            self._enqueue(kept, "merged")

    def _on_split(self, event: CustomerSplit) -> None:
        # A split only affects future resolution: the open conversation stays where the work is and
        # the restored customer's next contact opens their own.
        return

    def _on_erased(self, event: CustomerErased) -> None:
        st = self._state
        customer = event.customer_id
        st.last_agent.pop(customer, None)
        freed: list[Agent] = []
        for task in sorted((t for t in st.tasks.values() if t.customer_id == customer), key=lambda t: t.id):
            if task.phase is TaskPhase.OFFERED:
                self._rescind(task, "erased")
            holder = task.agent_id if task.phase is TaskPhase.ASSIGNED else None
            if task.phase is not TaskPhase.WRAPUP:
                self._closed(task, "erased", holder)
            agent = self._drop_task(task)
            if agent is not None:
                freed.append(agent)
        for conv in [c for c in st.conversations.values() if c.customer_id == customer]:
            self._close_conversation(conv)
        for agent in sorted(freed, key=lambda a: a.id):
            self._dispatch_agent(agent)

    # ------------------------------------------------------------------ agent side

    def _on_agent_upserted(self, event: AgentUpserted) -> None:
        agent = self._state.agents.get(event.agent_id)
        if agent is None:
            agent = Agent(
                id=event.agent_id,
                name=event.name,
                kind=event.kind,
                skills=dict(event.skills),
                capacity=dict(event.capacity),
                enabled=event.enabled,
                idle_since=self._now,
            )
            self._state.agents[agent.id] = agent
        else:
            agent.name, agent.kind, agent.enabled = event.name, event.kind, event.enabled
            agent.skills, agent.capacity = dict(event.skills), dict(event.capacity)
        self._refresh_ready(agent)
        if not agent.enabled:
            self._agent_unreachable(agent, "agent_disabled")
            return
        self._shed_offers_over_capacity(agent)
        self._dispatch_agent(agent)

    def _shed_offers_over_capacity(self, agent: Agent) -> None:
        """A roster change lowered the agent's capacity below what they hold: pending offers that no
        longer fit go back to the queue (newest first); accepted work stays with the agent."""
        cap = self._config.capacity
        tasks = self._state.tasks
        for task_id in reversed(list(agent.tasks)):
            task = tasks[task_id]
            channel = task.charged_channel
            if task.phase is not TaskPhase.OFFERED or channel is None:
                continue
            over_units = agent.kind is AgentKind.HUMAN and agent.used_units > cap.units
            if over_units or agent.per_channel.get(channel, 0) > capacity.channel_max(agent, channel, cap):
                self._rescind(task, "capacity_changed")
                self._enqueue(task, "requeued_capacity_changed")

    def _on_agent_status(self, event: AgentStatusChanged) -> None:
        agent = self._state.agents.get(event.agent_id)
        if agent is None:
            # Status before the roster entry: keep it (capacity from the defaults) rather than lose it.
            agent = Agent(
                id=event.agent_id, name=event.agent_id, kind=AgentKind.HUMAN, skills={}, capacity={}
            )
            self._state.agents[agent.id] = agent
        previous = agent.status
        agent.status = event.status
        if event.status is AgentStatus.AVAILABLE:
            if previous is not AgentStatus.AVAILABLE:
                agent.missed_in_row = 0
                if not agent.tasks:
                    agent.idle_since = self._now
            self._refresh_ready(agent)
            self._dispatch_agent(agent)
            return
        self._refresh_ready(agent)
        if event.status is AgentStatus.OFFLINE:
            self._agent_unreachable(agent, "agent_offline")
        else:
            self._requeue_offers_of(agent, f"agent_{event.status.value}")

    def _agent_unreachable(self, agent: Agent, reason: str) -> None:
        """Offline or disabled: offers go elsewhere, nobody waits for this agent, and (by default)
        their assigned work returns to the queue because the desktop that held it is gone."""
        st = self._state
        self._requeue_offers_of(agent, reason)
        for task_id in list(agent.tasks):
            task = st.tasks[task_id]
            if task.phase is TaskPhase.WRAPUP:
                self._drop_task(task)
            elif task.phase is TaskPhase.ASSIGNED and self._config.timers.requeue_assigned_on_offline:
                self._release(task)
                self._enqueue(task, f"requeued_{reason}")
        waiting_for = sorted(
            (t for t in st.tasks.values() if t.phase is TaskPhase.WAITING and t.preferred_agent == agent.id),
            key=lambda t: t.id,
        )
        for task in waiting_for:
            task.preferred_agent = task.preferred_until = None
            self._dispatch_task(task)

    def _valid_offer(self, task_id: str, offer_id: str, agent_id: str) -> Task | None:
        task = self._state.tasks.get(task_id)
        if (
            task is None
            or task.phase is not TaskPhase.OFFERED
            or task.offer is None
            or task.offer.offer_id != offer_id
            or task.offer.agent_id != agent_id
        ):
            return None  # stale: the offer already timed out, was rescinded or was answered
        return task

    def _on_accepted(self, event: OfferAccepted) -> None:
        task = self._valid_offer(event.task_id, event.offer_id, event.agent_id)
        if task is None:
            return
        agent = self._state.agents[event.agent_id]
        task.phase = TaskPhase.ASSIGNED
        task.offer = None
        agent.missed_in_row = 0
        if not task.answered:
            task.answered = True
            counters = self._counters(task.queue)
            wait = (self._now - task.enqueued_at).total_seconds()
            counters.answered += 1
            counters.answer_wait_total += wait
            if wait <= self._qc(task).service_level_threshold:
                counters.answered_within_sl += 1
        conv = self._state.conversations.get(task.conversation_id)
        if conv is not None:
            self._remember_agent(conv, agent.id)
        self._emit(
            agent.id,
            assemble(
                TaskAssigned, task_id=task.id, agent_id=agent.id, task=task_view(task, self._priority(task))
            ),
        )

    def _on_rejected(self, event: OfferRejected) -> None:
        task = self._valid_offer(event.task_id, event.offer_id, event.agent_id)
        if task is not None:
            self._offer_missed(task, "rejected")

    def _on_completed(self, event: TaskCompleted) -> None:
        st = self._state
        task = st.tasks.get(event.task_id)
        if task is None or task.phase is not TaskPhase.ASSIGNED or task.agent_id != event.agent_id:
            return
        agent = st.agents[event.agent_id]
        self._closed(task, "completed", agent.id)
        conv = st.conversations.get(task.conversation_id)
        if conv is not None:
            self._remember_agent(conv, agent.id)
        limit = self._config.wrapup_limit(task.queue)
        if agent.kind is AgentKind.HUMAN and limit > 0:
            task.phase = TaskPhase.WRAPUP
            task.wrapup_until = self._now + timedelta(seconds=limit)
            self._timers.push(task.wrapup_until, TimerKind.WRAPUP_END, task.id)
            if conv is not None and conv.task_id == task.id:
                conv.task_id = None
                self._schedule_window(conv)
            for iid in task.interaction_ids:
                self._by_interaction.pop(iid, None)
        else:
            self._drop_task(task)
        if (
            conv is not None
            and conv.task_id is None
            and (event.close_conversation or self._config.window(conv.last_channel) <= timedelta(0))
        ):
            self._close_conversation(conv)
        if task.phase is not TaskPhase.WRAPUP:
            self._dispatch_agent(agent)

    def _on_wrapup_done(self, event: WrapupDone) -> None:
        task = self._state.tasks.get(event.task_id)
        if task is not None and task.phase is TaskPhase.WRAPUP and task.agent_id == event.agent_id:
            self._finish_wrapup(task)

    def _on_transfer(self, event: TransferRequested) -> None:
        st = self._state
        task = st.tasks.get(event.task_id)
        if task is None or task.phase is not TaskPhase.ASSIGNED or task.agent_id != event.from_agent_id:
            return
        source = self._release(task)
        from_bot = source is not None and source.kind is AgentKind.BOT
        task.bot_phase, task.bot_until = False, None
        task.transcript.extend(event.transcript)
        if event.intent:
            task.intent = event.intent
        if event.to_queue:
            self._move_to_queue(task, event.to_queue)
            self._counters(task.queue).entered += 1
            rule = self._intents.by_name(event.intent) if event.intent else None
            if rule is not None:
                task.required.update(rule.required_skills)
                task.boost += rule.priority_boost
        task.preferred_agent = task.preferred_until = None
        if event.to_agent_id and self._agent_reachable(event.to_agent_id):
            task.preferred_agent = event.to_agent_id
            task.preferred_until = self._now + timedelta(seconds=self._config.timers.transfer_wait)
        elif not from_bot:
            # An agent passing work on should not be offered it straight back.
            cooldown = timedelta(seconds=self._config.timers.decline_cooldown)
            task.declined[event.from_agent_id] = self._now + cooldown
        self._enqueue(task, "handoff" if from_bot else "transferred")
        if source is not None:
            self._dispatch_agent(source)

    def _on_tick(self, event: RoutingTick) -> None:
        # Time already advanced to the tick's ``now``; its only job is to make time-outs fire.
        return

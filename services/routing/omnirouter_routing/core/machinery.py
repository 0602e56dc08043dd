"""The routing machinery shared by every event handler: indexes, queueing, matching, offers, capacity
and time-outs. Pure: no I/O, no clock but the ``now`` of the event being handled."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from omnirouter_routing.config import QueueConfig, RoutingConfig, SelectionStrategy
from omnirouter_routing.core import capacity
from omnirouter_routing.core.decisions import derive_id
from omnirouter_routing.core.intents import IntentMatcher
from omnirouter_routing.core.matching import fits, rank_key
from omnirouter_routing.core.payloads import assemble
from omnirouter_routing.core.ready import ReadyIndex
from omnirouter_routing.core.state import (
    Agent,
    Conversation,
    Offer,
    QueueCounters,
    RoutingState,
    Task,
    TaskPhase,
)
from omnirouter_routing.core.timers import TimerKind, Timers
from omnirouter_routing.core.views import task_view
from omnirouter_routing.core.waiting import WaitingIndex, effective_priority, wait_key
from omnirouter_shared.contracts.agents import (
    AgentKind,
    AgentStatus,
)
from omnirouter_shared.contracts.interactions import InteractionStatus
from omnirouter_shared.contracts.routing import (
    AgentStateForced,
    OfferRescinded,
    TaskClosed,
    TaskOffered,
    TaskQueued,
)

ENDED_CALL = (InteractionStatus.ABANDONED, InteractionStatus.COMPLETED)


def aware_utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def remember_bounded(ids: OrderedDict[str, None], key: str, limit: int) -> None:
    ids[key] = None
    while len(ids) > limit:
        ids.popitem(last=False)


class EngineCore:
    """State, derived indexes and the shared routing machinery: queueing, matching, offers, capacity,
    time-outs. The customer-side and agent-side event handlers build on it."""

    def __init__(self, config: RoutingConfig, state: RoutingState | None = None) -> None:
        self._config = config
        self._state = state if state is not None else RoutingState()
        self._intents = IntentMatcher(config)
        self._last_agent_memory = timedelta(seconds=config.timers.last_agent_memory)
        self._waiting = WaitingIndex()
        self._timers = Timers()
        self._ready = ReadyIndex(self._tracked_skills())
        self._by_customer: dict[str, str] = {}
        self._by_interaction: dict[str, str] = {}
        self._out: list[tuple[str, BaseModel]] = []
        self._now = self._state.clock or datetime.fromtimestamp(0, UTC)
        #: After a reload, every ready agent is matched again at the next event (new rules may fit).
        self._redispatch_all = False
        self._rebuild_indexes()

    # ------------------------------------------------------------------ indexes

    def _rebuild_indexes(self) -> None:
        st = self._state
        self._waiting = WaitingIndex()
        self._timers = Timers()
        self._ready = ReadyIndex(self._tracked_skills())
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
        single = (
            self._single_required_skill(task)
            if qc.strategy is SelectionStrategy.HIGHEST_PROFICIENCY
            else None
        )
        if single is not None:
            # One skill decides both eligibility and rank: walk the agents holding it, best first.
            for agent_id in self._ready.most_proficient(single):
                agent = agents[agent_id]
                if fits(agent, task, cap, now, as_preferred=False):
                    best = agent
                    break
        elif qc.strategy is SelectionStrategy.HIGHEST_PROFICIENCY:
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

    def _tracked_skills(self) -> frozenset[str]:
        return frozenset(
            skill
            for q in self._config.queues.values()
            if q.strategy is SelectionStrategy.HIGHEST_PROFICIENCY and len(q.required_skills) == 1
            for skill in q.required_skills
        )

    def _single_required_skill(self, task: Task) -> str | None:
        """The skill, when a task's ranking depends on one required skill only (the common case)."""
        if len(task.required) != 1:
            return None
        ((skill, level),) = task.required.items()
        if level < 1 or skill not in self._ready.tracked_skills or any(s != skill for s in task.preferred):
            return None
        return skill

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

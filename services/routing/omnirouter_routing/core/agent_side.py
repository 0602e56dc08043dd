"""Agent-side events: roster, presence, answers to offers, completion, wrap-up, transfers."""

from __future__ import annotations

from datetime import timedelta

from omnirouter_routing.core import capacity
from omnirouter_routing.core.machinery import EngineCore
from omnirouter_routing.core.payloads import assemble
from omnirouter_routing.core.state import (
    Agent,
    Task,
    TaskPhase,
)
from omnirouter_routing.core.timers import TimerKind
from omnirouter_routing.core.views import task_view
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
from omnirouter_shared.contracts.routing import (
    RoutingTick,
    TaskAssigned,
)


class AgentSide(EngineCore):
    """The roster and presence decide who is ready; answers, completions and transfers move work on."""

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

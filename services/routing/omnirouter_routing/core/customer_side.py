"""Customer-side events: contacts, ended calls, merges, splits, erasure (one conversation per customer)."""

from __future__ import annotations

from datetime import timedelta

from omnirouter_routing.config import ClosedAction
from omnirouter_routing.core.decisions import derive_id
from omnirouter_routing.core.machinery import ENDED_CALL, EngineCore, remember_bounded
from omnirouter_routing.core.payloads import assemble
from omnirouter_routing.core.state import (
    Agent,
    Conversation,
    Task,
    TaskPhase,
)
from omnirouter_routing.core.views import message_of
from omnirouter_shared.contracts.common import LIVE_CHANNELS
from omnirouter_shared.contracts.identity import (
    CustomerErased,
    CustomersMerged,
    CustomerSplit,
    InteractionResolved,
    InteractionStatusResolved,
)
from omnirouter_shared.contracts.routing import (
    ConversationMessage,
    TaskMessage,
)


class CustomerSide(EngineCore):
    """Contacts join or open the customer's one conversation; ended calls, merges and erasure close or
    fold its work."""

    def _on_interaction(self, event: InteractionResolved) -> None:
        st = self._state
        now = self._now
        inter = event.interaction
        if inter.interaction_id in self._by_interaction:
            return  # the same contact resolved again under another event id: already in its task
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

    def _join(self, task: Task, event: InteractionResolved, message: TaskMessage) -> None:
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
        self, event: InteractionResolved, conv: Conversation, message: TaskMessage, new_conversation: bool
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
        if status.direction != "inbound" or status.status not in ENDED_CALL:
            return
        task_id = self._by_interaction.get(status.interaction_id)
        task = self._state.tasks.get(task_id) if task_id else None
        if task is None or task.phase not in (TaskPhase.WAITING, TaskPhase.OFFERED):
            return
        if status.channel not in LIVE_CHANNELS:
            return
        ended = status.interaction_id
        if task.phase is TaskPhase.OFFERED:
            self._rescind(task, "abandoned")
        self._waiting.remove(task.id)
        others = [m for m in task.messages if m.interaction_id != ended]
        if others:
            # The call ended, but the customer's other contacts in this task still need an answer.
            task.channel = others[-1].channel
            self._enqueue(task, "live_channel_ended")
            return
        self._counters(task.queue).abandoned += 1
        self._closed(task, "abandoned", None)
        self._drop_task(task)

    def _on_merged(self, event: CustomersMerged) -> None:
        st = self._state
        if event.merge_id in st.applied_merges:
            return
        remember_bounded(st.applied_merges, event.merge_id, self._config.dedup_window)
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

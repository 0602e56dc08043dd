"""Hypothesis stateful tests: random event sequences never break the routing invariants.

- no agent above capacity (weighted units and per-channel maxima), and load equals held tasks;
- never two live offers for one task;
- no task lost: every task queued is waiting, offered, assigned, in wrap-up, or was closed;
- one open conversation per customer;
- determinism: replaying the same inputs gives the same decisions, and an engine restored from a
  snapshot mid-stream makes the same decisions as the original from then on;
- every decision payload is a valid contract model.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pydantic import BaseModel

from omnirouter_routing.config import RoutingConfig
from omnirouter_routing.core import Decision, RoutingEngine, TaskPhase
from omnirouter_routing.core.capacity import channel_max
from omnirouter_shared.contracts.agents import (
    AgentKind,
    AgentStatus,
    AgentUpserted,
    OfferAccepted,
    OfferRejected,
    TaskCompleted,
    TransferRequested,
    WrapupDone,
)
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.identity import CustomerErased, CustomersMerged
from omnirouter_shared.contracts.interactions import InteractionStatus
from omnirouter_shared.contracts.routing import (
    OfferRescinded,
    RoutingTick,
    TaskAssigned,
    TaskClosed,
    TaskOffered,
    TaskQueued,
)
from tests.routing.factories import T0, call_ended, interaction, status
from tests.routing.harness import config

CFG = config(
    queues={
        "default": {"escalation": [{"after": 40, "priority_boost": 3}]},
        "billing": {
            "required_skills": {"billing": 3},
            "escalation": [
                {"after": 30, "relax_skills": {"billing": 1}},
                {"after": 90, "overflow_to": "default"},
            ],
        },
        "front": {"bot_first": True, "bot_wait": 15},
    },
    intents=[{"name": "billing", "queue": "billing", "languages": {"en": {"keywords": ["invoice"]}}}],
    entry=[{"channel": "webchat", "queue": "front"}],
    timers={
        "offer_timeout": 20,
        "max_missed_offers": 2,
        "wrapup_time_limit": 15,
        "last_agent_wait": 25,
        "transfer_wait": 20,
        "decline_cooldown": 30,
    },
    conversation_windows={"voice": 0, "webchat": 60, "sms": 120, "email": 200},
)
#: A reload target: one queue, so tasks of the others move to the default queue.
PLAIN = config(timers={"offer_timeout": 10, "wrapup_time_limit": 0})
AGENTS = ("a0", "a1", "a2", "bot")
CAPACITY = {
    "a0": {Channel.VOICE: 1, Channel.WEBCHAT: 3, Channel.SMS: 2, Channel.EMAIL: 5},
    "a1": {Channel.WEBCHAT: 2, Channel.EMAIL: 3},
    "a2": {Channel.VOICE: 1, Channel.SMS: 3, Channel.EMAIL: 2},
    "bot": {Channel.WEBCHAT: 50},
}
CUSTOMERS = ("c0", "c1", "c2", "c3", "c4")
CHANNELS = (Channel.VOICE, Channel.WEBCHAT, Channel.SMS, Channel.EMAIL)
TEXTS = ("hello", "my invoice", None)


class RoutingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = RoutingEngine(CFG)
        self.twin: RoutingEngine | None = None
        self.inputs: list[tuple[str, BaseModel, Any]] = []  # ("reconfigure", config, None) for reloads
        self.outputs: list[Decision] = []
        self.seconds = 0.0
        self.seq = 0
        self.live_offers: dict[str, TaskOffered] = {}
        self.assigned: dict[str, str] = {}  # task id -> agent id
        self.wrapping: dict[str, str] = {}
        self.queued_ever: set[str] = set()
        self.closed: set[str] = set()

    # ------------------------------------------------------------------ feeding

    def feed(self, payload: BaseModel) -> None:
        self.seq += 1
        event_id = f"e{self.seq}"
        now = T0 + timedelta(seconds=self.seconds)
        self.inputs.append((event_id, payload, now))
        out = self.engine.handle(event_id, payload, now)
        if self.twin is not None:
            assert self.twin.handle(event_id, payload, now) == out, "restored engine diverged"
        self.outputs.extend(out)
        for d in out:
            self.observe(d.payload)

    def observe(self, p: BaseModel) -> None:
        assert type(p).model_validate(p.model_dump()) == p, f"invalid payload {p!r}"
        if isinstance(p, TaskOffered):
            assert p.task.id not in self.live_offers, "a second live offer for one task"
            self.live_offers[p.task.id] = p
        elif isinstance(p, OfferRescinded):
            assert self.live_offers.pop(p.task_id).offer_id == p.offer_id
        elif isinstance(p, TaskAssigned):
            del self.live_offers[p.task_id]
            self.assigned[p.task_id] = p.agent_id
        elif isinstance(p, TaskQueued):
            self.queued_ever.add(p.task_id)
            self.assigned.pop(p.task_id, None)
        elif isinstance(p, TaskClosed):
            self.closed.add(p.task_id)
            assert p.task_id not in self.live_offers
            if self.assigned.pop(p.task_id, None) is not None and p.reason == "completed":
                self.wrapping[p.task_id] = p.agent_id or ""

    # ------------------------------------------------------------------ rules

    @rule(who=st.sampled_from(AGENTS), billing=st.integers(0, 5))
    def upsert_agent(self, who: str, billing: int) -> None:
        kind = AgentKind.BOT if who == "bot" else AgentKind.HUMAN
        self.feed(
            AgentUpserted(
                agent_id=who, name=who, kind=kind, skills={"billing": billing}, capacity=CAPACITY[who]
            )
        )

    @rule(who=st.sampled_from(AGENTS), value=st.sampled_from(list(AgentStatus)))
    def change_status(self, who: str, value: AgentStatus) -> None:
        self.feed(status(who, value))

    @rule(customer=st.sampled_from(CUSTOMERS), channel=st.sampled_from(CHANNELS), text=st.sampled_from(TEXTS))
    def contact(self, customer: str, channel: Channel, text: str | None) -> None:
        self.feed(interaction(customer, f"i{self.seq}", channel=channel, text=text, when=T0))

    @precondition(lambda self: bool(self.live_offers))
    @rule(pick=st.integers(0, 100), accept=st.booleans())
    def answer_offer(self, pick: int, accept: bool) -> None:
        offer = self.live_offers[sorted(self.live_offers)[pick % len(self.live_offers)]]
        kind = OfferAccepted if accept else OfferRejected
        self.feed(kind(offer_id=offer.offer_id, task_id=offer.task.id, agent_id=offer.agent_id))

    @precondition(lambda self: bool(self.assigned))
    @rule(pick=st.integers(0, 100), close=st.booleans())
    def complete(self, pick: int, close: bool) -> None:
        task_id = sorted(self.assigned)[pick % len(self.assigned)]
        self.feed(TaskCompleted(task_id=task_id, agent_id=self.assigned[task_id], close_conversation=close))

    @precondition(lambda self: bool(self.wrapping))
    @rule(pick=st.integers(0, 100))
    def wrapup_done(self, pick: int) -> None:
        task_id = sorted(self.wrapping)[pick % len(self.wrapping)]
        self.feed(WrapupDone(task_id=task_id, agent_id=self.wrapping.pop(task_id)))

    @precondition(lambda self: bool(self.assigned))
    @rule(
        pick=st.integers(0, 100),
        to_agent=st.sampled_from((None, *AGENTS)),
        to_queue=st.sampled_from((None, "billing", "default", "gone")),
    )
    def transfer(self, pick: int, to_agent: str | None, to_queue: str | None) -> None:
        task_id = sorted(self.assigned)[pick % len(self.assigned)]
        self.feed(
            TransferRequested(
                task_id=task_id,
                from_agent_id=self.assigned[task_id],
                to_agent_id=to_agent,
                to_queue=to_queue,
                intent="billing" if to_queue == "billing" else None,
                transcript=("bot: hi",),
            )
        )

    @rule(customer=st.sampled_from(CUSTOMERS), pick=st.integers(0, 1000), hang_up=st.booleans())
    def call_ends(self, customer: str, pick: int, hang_up: bool) -> None:
        # Ends one of the customer's recent interactions (most are not calls: then nothing happens).
        iid = f"i{max(0, self.seq - pick % 10)}"
        self.feed(
            call_ended(customer, iid, InteractionStatus.ABANDONED if hang_up else InteractionStatus.COMPLETED)
        )

    @rule(survivor=st.sampled_from(CUSTOMERS), merged=st.sampled_from(CUSTOMERS), merge_no=st.integers(0, 3))
    def merge(self, survivor: str, merged: str, merge_no: int) -> None:
        self.feed(
            CustomersMerged(
                merge_id=f"m{merge_no}", survivor_id=survivor, merged_ids=(merged,), reason="test"
            )
        )

    @rule(customer=st.sampled_from(CUSTOMERS))
    def erase(self, customer: str) -> None:
        self.feed(CustomerErased(customer_id=customer, erased_at=T0))

    @rule(seconds=st.sampled_from((1, 5, 16, 21, 31, 61, 121)))
    def tick(self, seconds: int) -> None:
        self.seconds += seconds
        self.feed(RoutingTick(now=T0 + timedelta(seconds=self.seconds)))

    @rule()
    def redeliver_last(self) -> None:
        if self.inputs and not isinstance(self.inputs[-1][1], RoutingConfig):
            event_id, payload, now = self.inputs[-1]
            assert self.engine.handle(event_id, payload, now) == []

    @rule(plain=st.booleans())
    def reload_configuration(self, plain: bool) -> None:
        cfg = PLAIN if plain else CFG
        self.inputs.append(("reconfigure", cfg, None))
        self.engine.reconfigure(cfg)
        if self.twin is not None:
            self.twin.reconfigure(cfg)

    @precondition(lambda self: self.twin is None)
    @rule()
    def snapshot_and_restore(self) -> None:
        self.twin = RoutingEngine.restore(self.engine.config, self.engine.snapshot())

    # ------------------------------------------------------------------ invariants

    @invariant()
    def capacity_is_never_exceeded(self) -> None:
        state = self.engine.state
        cap = CFG.capacity
        for agent in state.agents.values():
            held = [state.tasks[t] for t in agent.tasks]
            assert all(t.agent_id == agent.id for t in held)
            assert agent.used_units == sum(t.charged_units for t in held)
            for channel, count in agent.per_channel.items():
                assert count == sum(1 for t in held if t.charged_channel is channel)
            # A roster update lowering capacity may leave accepted work above it, but routing never
            # offers beyond capacity: every pending offer fits the agent's current limits.
            for task in held:
                if task.phase is TaskPhase.OFFERED:
                    assert task.charged_channel is not None
                    assert agent.per_channel[task.charged_channel] <= channel_max(
                        agent, task.charged_channel, cap
                    )
                    assert agent.kind is AgentKind.BOT or agent.used_units <= cap.units

    @invariant()
    def offers_match_the_state(self) -> None:
        state = self.engine.state
        offered = {t.id for t in state.tasks.values() if t.phase is TaskPhase.OFFERED}
        assert offered == set(self.live_offers)
        for task_id, offer in self.live_offers.items():
            task = state.tasks[task_id]
            assert task.offer is not None and task.offer.offer_id == offer.offer_id

    @invariant()
    def no_task_is_lost(self) -> None:
        state = self.engine.state
        waiting = {t for q in sorted(CFG.queues) for t in self.engine.waiting_in_order(q)}
        for task in state.tasks.values():
            assert (task.phase is TaskPhase.WAITING) == (task.id in waiting)
            assert (task.phase is TaskPhase.WAITING) == (task.agent_id is None)
        for task_id in self.queued_ever:
            assert task_id in state.tasks or task_id in self.closed, f"task {task_id} lost"

    @invariant()
    def one_open_conversation_per_customer(self) -> None:
        customers = [c.customer_id for c in self.engine.state.conversations.values()]
        assert len(customers) == len(set(customers))

    def teardown(self) -> None:
        replay = RoutingEngine(CFG)
        again: list[Decision] = []
        for event_id, payload, now in self.inputs:
            if isinstance(payload, RoutingConfig):
                replay.reconfigure(payload)
            else:
                again.extend(replay.handle(event_id, payload, now))
        assert again == self.outputs, "replaying the same inputs gave different decisions"
        assert replay.snapshot() == self.engine.snapshot()


RoutingMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRoutingInvariants = RoutingMachine.TestCase

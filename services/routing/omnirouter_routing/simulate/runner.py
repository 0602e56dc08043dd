"""The discrete-event loop: inputs through the core, simulated agents and customers reacting.

Everything is ordered by (simulated time, sequence number) and every random draw comes from one seeded
generator consumed in that order, so a run is reproducible bit for bit for a given seed.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from omnirouter_routing.config import RoutingConfig
from omnirouter_routing.core import RoutingEngine, RoutingStats
from omnirouter_routing.simulate.scenario import Behaviour, lognormal
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
from omnirouter_shared.contracts.identity import InteractionResolved, InteractionStatusResolved
from omnirouter_shared.contracts.interactions import InteractionStatus, InteractionStatusChanged
from omnirouter_shared.contracts.routing import (
    AgentStateForced,
    RoutingTick,
    TaskAssigned,
    TaskOffered,
    TaskQueued,
)


@dataclass
class SimulationResult:
    stats: RoutingStats
    started: datetime
    ended: datetime
    contacts: int
    tasks_created: int
    inputs: int
    decisions: int
    #: Time-weighted share of human agents' capacity in use (offers, work and wrap-up).
    occupancy: float
    humans: int
    bots: int
    unfinished: int
    answer_waits: list[float] = field(default_factory=list)


class Simulation:
    def __init__(
        self,
        config: RoutingConfig,
        agents: list[AgentUpserted],
        inputs: list[tuple[datetime, BaseModel]],
        behaviour: Behaviour,
        seed: int,
        start: datetime,
        tick: float = 1.0,
        recorded_handle_times: dict[str, float] | None = None,
        simulate_abandonment: bool = True,
    ) -> None:
        self.engine = RoutingEngine(config)
        self.config = config
        self.behaviour = behaviour
        self.seed = seed
        self.start = start
        self.tick = timedelta(seconds=tick)
        self.recorded = recorded_handle_times or {}
        self.simulate_abandonment = simulate_abandonment
        self._heap: list[tuple[datetime, int, BaseModel]] = []
        self._seq = 0
        self._kinds = {a.agent_id: a.kind for a in agents}
        self._contacts = 0
        self._tasks_created = 0
        self._decisions = 0
        self._inputs = 0
        self._occupancy_sum = 0.0
        self._staffed = 0.0
        for agent in agents:
            self._at(start, agent)
            self._at(start, AgentStatusChanged(agent_id=agent.agent_id, status=AgentStatus.AVAILABLE))
        for when, payload in inputs:
            self._at(when, payload)
        self._at(start + self.tick, RoutingTick(now=start + self.tick))

    def _rng(self, purpose: str, key: str) -> random.Random:
        """A generator per (purpose, entity): the same customer keeps the same patience and the same task
        the same handling time whatever the configuration, so two what-ifs differ by their configuration
        and not by which random numbers happened to come next (common random numbers)."""
        return random.Random(f"{self.seed}/{purpose}/{key}")

    def _at(self, when: datetime, payload: BaseModel) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, payload))

    def _after(self, now: datetime, seconds: float, payload: BaseModel) -> None:
        self._at(now + timedelta(seconds=max(0.0, seconds)), payload)

    def run(self, arrivals_end: datetime, hard_end: datetime) -> SimulationResult:
        now = self.start
        while self._heap:
            when, seq, payload = heapq.heappop(self._heap)
            if when > hard_end:
                break
            now = when
            if isinstance(payload, RoutingTick):
                self._account(self.tick.total_seconds())
                if now >= arrivals_end and not self.engine.state.tasks and not self._pending_inputs():
                    self._feed(f"sim-{seq}", payload, now)
                    break
                self._at(now + self.tick, RoutingTick(now=now + self.tick))
            self._feed(f"sim-{seq}", payload, now)
        stats = self.engine.stats(now)
        humans = sum(1 for k in self._kinds.values() if k is AgentKind.HUMAN)
        return SimulationResult(
            stats=stats,
            started=self.start,
            ended=now,
            contacts=self._contacts,
            tasks_created=self._tasks_created,
            inputs=self._inputs,
            decisions=self._decisions,
            occupancy=self._occupancy_sum / self._staffed if self._staffed else 0.0,
            humans=humans,
            bots=len(self._kinds) - humans,
            unfinished=len(self.engine.state.tasks),
        )

    def _pending_inputs(self) -> bool:
        return any(not isinstance(p, RoutingTick) for _, _, p in self._heap)

    def _account(self, seconds: float) -> None:
        units = self.config.capacity.units
        for agent in self.engine.state.agents.values():
            if agent.kind is AgentKind.HUMAN and agent.status is not AgentStatus.OFFLINE:
                self._staffed += seconds
                self._occupancy_sum += seconds * min(1.0, agent.used_units / units)

    def _feed(self, event_id: str, payload: BaseModel, now: datetime) -> None:
        self._inputs += 1
        if isinstance(payload, InteractionResolved):
            self._contacts += 1
            channel = payload.interaction.channel
            if self.simulate_abandonment and channel in LIVE_CHANNELS:
                rng = self._rng("patience", payload.interaction.interaction_id)
                patience = rng.expovariate(1.0 / self.behaviour.patience)
                self._after(now, patience, _hang_up(payload, now))
        decisions = self.engine.handle(event_id, payload, now)
        self._decisions += len(decisions)
        for decision in decisions:
            self._react(decision.payload, now)

    def _react(self, p: BaseModel, now: datetime) -> None:
        b = self.behaviour
        if isinstance(p, TaskQueued) and p.reason == "new":
            self._tasks_created += 1
        elif isinstance(p, TaskOffered):
            ids = {"offer_id": p.offer_id, "task_id": p.task.id, "agent_id": p.agent_id}
            if self._kinds.get(p.agent_id) is AgentKind.BOT:
                self._after(now, 0.5, OfferAccepted(**ids))
                return
            rng = self._rng("offer", p.offer_id)
            draw = rng.random()
            think = rng.expovariate(1.0 / b.think_time) if b.think_time > 0 else 0.0
            if draw < b.miss_rate:
                return  # the agent never answers: the offer times out
            if draw < b.miss_rate + b.reject_rate:
                self._after(now, think, OfferRejected(**ids))
            else:
                self._after(now, think, OfferAccepted(**ids))
        elif isinstance(p, TaskAssigned):
            task_id, agent_id = p.task_id, p.agent_id
            rng = self._rng("work", task_id)
            if self._kinds.get(agent_id) is AgentKind.BOT:
                talk = rng.expovariate(1.0 / b.bot_time)
                if rng.random() < b.bot_handoff_rate:
                    queue = b.handoff_queue or self.config.default_queue
                    handoff = TransferRequested(
                        task_id=task_id,
                        from_agent_id=agent_id,
                        to_queue=queue,
                        transcript=("bot: transcript",),
                    )
                    self._after(now, talk, handoff)
                else:
                    self._after(now, talk, TaskCompleted(task_id=task_id, agent_id=agent_id))
                return
            mean = b.handle_times.get(p.task.channel, 300.0)
            handle = self.recorded.get(task_id) or lognormal(rng, mean, b.handle_sigma)
            self._after(now, handle, TaskCompleted(task_id=task_id, agent_id=agent_id))
            wrap = rng.expovariate(1.0 / b.wrapup_time) if b.wrapup_time > 0 else 0.0
            self._after(now, handle + wrap, WrapupDone(task_id=task_id, agent_id=agent_id))
        elif isinstance(p, AgentStateForced):
            back = AgentStatusChanged(agent_id=p.agent_id, status=AgentStatus.AVAILABLE, reason="back")
            self._after(now, b.away_time, back)


def _hang_up(event: InteractionResolved, now: datetime) -> InteractionStatusResolved:
    i = event.interaction
    return InteractionStatusResolved(
        customer_id=event.customer.customer_id,
        status=InteractionStatusChanged(
            interaction_id=i.interaction_id,
            channel=i.channel,
            vendor=i.vendor,
            vendor_message_id=i.vendor_message_id,
            customer_address=i.sender,
            status=InteractionStatus.ABANDONED,
            occurred_at=now,
        ),
    )

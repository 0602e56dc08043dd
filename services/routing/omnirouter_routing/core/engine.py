"""The routing engine: input events and an injected clock in, ordered decisions out. No I/O.

One engine serves one routing domain (one inbox partition), called by a single writer, so there are no
locks: capacity checks and offers happen in the same step and can never race (pain #5).

Determinism: time comes only from the ``now`` passed in (clamped so it never goes backwards); every
choice among agents or tasks is a minimum over a total order ending in an id, so neither dict/set order
nor hash seeds change a decision; derived ids are uuid5 of the causing event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from omnirouter_routing.config import RoutingConfig
from omnirouter_routing.core.agent_side import AgentSide
from omnirouter_routing.core.customer_side import CustomerSide
from omnirouter_routing.core.decisions import Decision, decision_ids
from omnirouter_routing.core.intents import IntentMatcher
from omnirouter_routing.core.machinery import aware_utc, remember_bounded
from omnirouter_routing.core.snapshot import dump_state, load_state
from omnirouter_routing.core.state import (
    RoutingState,
)
from omnirouter_routing.core.stats import RoutingStats, compute_stats
from omnirouter_shared.contracts.agents import (
    AgentStatusChanged,
    AgentUpserted,
    OfferAccepted,
    OfferRejected,
    TaskCompleted,
    TransferRequested,
    WrapupDone,
)
from omnirouter_shared.contracts.identity import (
    CustomerErased,
    CustomersMerged,
    CustomerSplit,
    InteractionResolved,
    InteractionStatusResolved,
)
from omnirouter_shared.contracts.routing import (
    RoutingTick,
)


class RoutingEngine(CustomerSide, AgentSide):
    """The routing core of one routing domain.

    ``handle`` applies one input event and returns the decisions it caused, in order; an event id seen
    recently is ignored (redelivery after a crash). ``snapshot``/``restore`` round-trip the full state;
    ``reconfigure`` swaps the configuration keeping every task.
    """

    def __init__(self, config: RoutingConfig, state: RoutingState | None = None) -> None:
        super().__init__(config, state)
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
        now = aware_utc(now)
        if st.clock is None or now > st.clock:
            st.clock = now
        self._now = st.clock
        remember_bounded(st.recent_events, event_id, self._config.dedup_window)
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
        return compute_stats(self._state, self._waiting, self._config, aware_utc(now))

    def waiting_in_order(self, queue: str) -> list[str]:
        """Task ids waiting in ``queue``, next served first."""
        return list(self._waiting.in_order(queue))

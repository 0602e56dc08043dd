"""Agent roster and presence: disabling, going offline with work, shrinking capacity, state counts."""

from __future__ import annotations

from omnirouter_shared.contracts.agents import AgentKind, AgentStatus
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.routing import OfferRescinded, TaskOffered, TaskQueued
from tests.routing.factories import agent, interaction, status
from tests.routing.harness import Harness, of, one


def test_disabling_an_agent_moves_their_offer_elsewhere() -> None:
    h = Harness()
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.online("a2", 2)
    out = h.send(agent(offer.agent_id, enabled=False), 3)
    assert one(out, OfferRescinded).reason == "agent_disabled"
    assert one(out, TaskOffered).agent_id == "a2"


def test_assigned_work_of_an_agent_going_offline_returns_to_the_queue() -> None:
    h = Harness()
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.accept(offer, 2)
    h.online("a2", 3)
    out = h.send(status("a1", AgentStatus.OFFLINE), 4)
    assert one(out, TaskQueued).reason == "requeued_agent_offline"
    again = one(out, TaskOffered)
    assert again.agent_id == "a2" and again.task.id == offer.task.id
    assert h.engine.state.agents["a1"].used_units == 0


def test_lower_capacity_rescinds_offers_that_no_longer_fit_but_keeps_accepted_work() -> None:
    h = Harness()
    h.online("a1", 0, capacity={Channel.WEBCHAT: 3})
    first = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.accept(first, 2)
    h.send(interaction("c2", "i2"), 3)
    out = h.send(agent("a1", capacity={Channel.WEBCHAT: 1}), 4)
    assert one(out, OfferRescinded).reason == "capacity_changed"
    assert of(out, TaskOffered) == []
    held = h.engine.state.agents["a1"].tasks
    assert held == [first.task.id]


def test_agent_states_are_counted_separately_for_humans_and_bots() -> None:
    h = Harness()
    h.online("free", 0)
    h.online("full", 0, capacity={Channel.WEBCHAT: 1})
    h.send(agent("gone"), 0)
    h.online("pause", 0)
    h.send(status("pause", AgentStatus.AWAY), 0)
    h.online("bot", 0, kind=AgentKind.BOT, capacity={Channel.EMAIL: 10})
    h.send(status("free", AgentStatus.AWAY), 1)
    h.send(interaction("c1", "i1"), 1)  # goes to "full", the only available human
    h.send(status("free"), 2)
    stats = h.engine.stats(h.engine.state.clock)  # type: ignore[arg-type]
    a = stats.agents
    assert (a.available, a.busy, a.away, a.offline, a.working) == (1, 1, 1, 1, 1)
    assert stats.bots.available == 1 and stats.bots.working == 0

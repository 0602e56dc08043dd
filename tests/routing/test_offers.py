"""Offers: time-out and rejection re-queue at the original place; misses force the agent away;
customers who hang up have their offers rescinded."""

from __future__ import annotations

from omnirouter_shared.contracts.agents import AgentStatus
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.interactions import InteractionStatus
from omnirouter_shared.contracts.routing import (
    AgentStateForced,
    OfferRescinded,
    TaskClosed,
    TaskOffered,
    TaskQueued,
)
from tests.routing.factories import call_ended, interaction, status
from tests.routing.harness import Harness, config, of, one


def test_offer_times_out_and_goes_to_the_next_agent() -> None:
    h = Harness(config(timers={"offer_timeout": 20}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.online("a2", 2)
    assert of(h.tick(20), OfferRescinded) == []
    out = h.tick(21)
    rescinded = one(out, OfferRescinded)
    assert rescinded.reason == "timeout" and rescinded.offer_id == offer.offer_id
    assert one(out, TaskQueued).reason == "requeued_timeout"
    again = one(out, TaskOffered)
    assert again.agent_id == "a2" and again.offer_id != offer.offer_id


def test_rejected_task_keeps_its_place_ahead_of_later_arrivals() -> None:
    h = Harness(config(timers={"decline_cooldown": 600}))
    h.online("a1", 0, capacity={Channel.WEBCHAT: 1})
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    second = one(h.send(interaction("c2", "i2"), 2), TaskQueued)
    out = h.reject(offer, 3)
    assert one(out, TaskQueued).reason == "requeued_rejected"
    # a1 declined c1, so a1 gets c2; c1 stays first in line for anyone else.
    assert one(out, TaskOffered).task.id == second.task_id
    assert h.engine.waiting_in_order("default") == [offer.task.id]
    fresh = one(h.online("a2", 4), TaskOffered)
    assert fresh.task.id == offer.task.id


def test_a_stale_accept_after_time_out_is_ignored() -> None:
    h = Harness(config(timers={"offer_timeout": 10}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.tick(12)
    assert h.accept(offer, 13) == []


def test_missed_offers_in_a_row_force_the_agent_away() -> None:
    h = Harness(config(timers={"offer_timeout": 10, "max_missed_offers": 2, "decline_cooldown": 5}))
    h.online("a1", 0)
    one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.send(interaction("c2", "i2"), 2)
    out = h.tick(12)
    forced = one(out, AgentStateForced)
    assert forced.agent_id == "a1" and forced.status == "away" and forced.reason == "missed_offers"
    assert {r.reason for r in of(out, OfferRescinded)} == {"timeout"}
    assert h.engine.state.agents["a1"].status is AgentStatus.AWAY
    assert of(out, TaskOffered) == []
    # Back to available: the counter restarts and waiting work is offered again.
    assert len(of(h.send(status("a1"), 20), TaskOffered)) == 2
    assert h.engine.state.agents["a1"].missed_in_row == 0


def test_going_away_rescinds_pending_offers() -> None:
    h = Harness()
    h.online("a1", 0)
    h.online("a2", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    out = h.send(status(offer.agent_id, AgentStatus.AWAY), 2)
    assert one(out, OfferRescinded).reason == "agent_away"
    assert one(out, TaskOffered).agent_id != offer.agent_id


def test_caller_hanging_up_while_offered_rescinds_and_closes() -> None:
    h = Harness()
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1", channel=Channel.VOICE), 1), TaskOffered)
    out = h.send(call_ended("c1", "i1"), 5)
    assert one(out, OfferRescinded).reason == "abandoned"
    closed = one(out, TaskClosed)
    assert closed.reason == "abandoned" and closed.task_id == offer.task.id
    assert h.engine.state.tasks == {}
    assert h.engine.state.agents["a1"].used_units == 0
    assert h.engine.stats(h.engine.state.clock).queues[0].abandoned == 1  # type: ignore[arg-type]


def test_caller_hanging_up_while_waiting_closes_the_task() -> None:
    h = Harness()
    h.send(interaction("c1", "i1", channel=Channel.VOICE), 1)
    out = h.send(call_ended("c1", "i1", InteractionStatus.COMPLETED), 5)
    assert one(out, TaskClosed).reason == "abandoned"
    assert h.engine.waiting_in_order("default") == []


def test_hanging_up_leaves_the_written_message_waiting() -> None:
    h = Harness()
    h.send(interaction("c1", "i1", channel=Channel.SMS), 1)
    h.send(interaction("c1", "i2", channel=Channel.VOICE), 2)
    out = h.send(call_ended("c1", "i2"), 3)
    queued = one(out, TaskQueued)
    assert queued.reason == "live_channel_ended" and queued.channel is Channel.SMS
    assert of(out, TaskClosed) == []

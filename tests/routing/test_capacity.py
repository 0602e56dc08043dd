"""Weighted, per-channel capacity: never above it, and freed capacity pulls the next task at once."""

from __future__ import annotations

from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.routing import TaskAssigned, TaskOffered
from tests.routing.factories import interaction
from tests.routing.harness import Harness, config, of, one

ALL = {Channel.VOICE: 1, Channel.WEBCHAT: 5, Channel.EMAIL: 10, Channel.SMS: 5}


def test_three_chats_fill_an_agent_weighted_a_third_each() -> None:
    h = Harness()
    h.online("a1", 0, capacity=ALL)
    offers = [of(h.send(interaction(f"c{i}", f"i{i}"), i), TaskOffered) for i in range(4)]
    assert [len(o) for o in offers] == [1, 1, 1, 0]
    assert h.engine.state.agents["a1"].used_units == 60


def test_five_emails_fit_where_three_chats_do() -> None:
    h = Harness()
    h.online("a1", 0, capacity=ALL)
    offers = [
        of(h.send(interaction(f"c{i}", f"i{i}", channel=Channel.EMAIL), i), TaskOffered) for i in range(6)
    ]
    assert [len(o) for o in offers] == [1, 1, 1, 1, 1, 0]


def test_per_channel_maximum_from_the_roster_applies_too() -> None:
    h = Harness()
    h.online("a1", 0, capacity={Channel.WEBCHAT: 2})
    offers = [of(h.send(interaction(f"c{i}", f"i{i}"), i), TaskOffered) for i in range(3)]
    assert [len(o) for o in offers] == [1, 1, 0]


def test_an_agent_without_the_channel_gets_nothing_on_it() -> None:
    h = Harness()
    h.online("a1", 0, capacity={Channel.EMAIL: 5})
    assert of(h.send(interaction("c1", "i1", channel=Channel.SMS), 1), TaskOffered) == []


def test_a_call_takes_the_whole_agent_and_blocks_new_chats() -> None:
    cfg = config(
        capacity={"units": 60, "weights": {"voice": 40, "webchat": 20}, "blocks": {"voice": ["webchat"]}}
    )
    h = Harness(cfg)
    h.online("a1", 0, capacity=ALL)
    call = one(h.send(interaction("c1", "i1", channel=Channel.VOICE), 1), TaskOffered)
    # 40 of 60 units used: a 20-unit chat would fit by weight, but the call blocks chats.
    assert of(h.send(interaction("c2", "i2"), 2), TaskOffered) == []
    h.accept(call, 3)
    out = h.complete(call.task.id, "a1", 4)
    out += h.wrapup_done(call.task.id, "a1", 5)
    assert one(out, TaskOffered).task.channel is Channel.WEBCHAT


def test_a_busy_agent_is_not_offered_a_call() -> None:
    h = Harness()
    h.online("a1", 0, capacity=ALL)
    h.send(interaction("c1", "i1"), 1)
    assert of(h.send(interaction("c2", "i2", channel=Channel.VOICE), 2), TaskOffered) == []


def test_freed_capacity_is_offered_the_oldest_waiting_task_immediately() -> None:
    h = Harness(config(timers={"wrapup_time_limit": 0}))
    h.online("a1", 0, capacity={Channel.WEBCHAT: 1})
    first = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.send(interaction("c2", "i2"), 2)
    h.send(interaction("c3", "i3"), 3)
    h.accept(first, 4)
    nxt = one(h.complete(first.task.id, "a1", 5), TaskOffered)
    assert nxt.task.messages[0].interaction_id == "i2"


def test_wrap_up_holds_the_slot_until_done_or_its_time_limit() -> None:
    h = Harness(config(timers={"wrapup_time_limit": 30}))
    h.online("a1", 0, capacity={Channel.WEBCHAT: 1})
    first = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.send(interaction("c2", "i2"), 2)
    h.accept(first, 3)
    assert of(h.complete(first.task.id, "a1", 4), TaskOffered) == []
    assert of(h.tick(33), TaskOffered) == []
    nxt = one(h.tick(34), TaskOffered)
    assert nxt.task.messages[0].interaction_id == "i2"
    h.accept(nxt, 35)
    h.complete(nxt.task.id, "a1", 36)
    h.send(interaction("c3", "i3"), 37)
    assert one(h.wrapup_done(nxt.task.id, "a1", 38), TaskOffered).task.messages[0].interaction_id == "i3"


def test_accepting_assigns_and_counts_answer_speed() -> None:
    h = Harness()
    h.send(interaction("c1", "i1"), 0)
    offer = one(h.online("a1", 10), TaskOffered)
    assigned = one(h.accept(offer, 15), TaskAssigned)
    assert assigned.agent_id == "a1"
    stats = h.engine.stats(h.engine.state.clock)  # type: ignore[arg-type]
    q = stats.queues[0]
    assert q.answered == 1 and q.average_speed_of_answer == 15.0 and q.service_level == 1.0

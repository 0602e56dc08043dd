"""The basic path: a contact becomes a task, is offered, accepted; follow-ups join the conversation."""

from __future__ import annotations

from omnirouter_routing.core import RoutingEngine, derive_id
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.routing import (
    ConversationMessage,
    TaskAssigned,
    TaskOffered,
    TaskQueued,
)
from tests.routing.factories import at, interaction
from tests.routing.harness import Harness, of, one


def test_interaction_is_queued_then_offered_to_an_available_agent() -> None:
    h = Harness()
    h.online("a1", 0)
    out = h.send(interaction("c1", "i1"), 1)
    assert [type(d) for d in out] == [TaskQueued, TaskOffered]
    queued, offer = out
    assert isinstance(queued, TaskQueued) and isinstance(offer, TaskOffered)
    assert queued.reason == "new" and queued.queue == "default" and queued.channel is Channel.WEBCHAT
    assert offer.agent_id == "a1" and offer.task.id == queued.task_id
    assert offer.task.messages[0].text == "hello"
    assert offer.expires_at == at(1 + 30)


def test_second_message_joins_the_open_conversation_without_a_second_offer() -> None:
    h = Harness()
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    assert h.send(interaction("c1", "i2", text="are you there?"), 2) == []
    assigned = one(h.accept(offer, 3), TaskAssigned)
    assert [m.interaction_id for m in assigned.task.messages] == ["i1", "i2"]
    follow_up = one(h.send(interaction("c1", "i3", channel=Channel.SMS), 4), ConversationMessage)
    assert follow_up.agent_id == "a1" and follow_up.task_id == offer.task.id
    assert follow_up.message.interaction_id == "i3"


def test_without_agents_the_task_waits_and_goes_to_the_first_agent_who_arrives() -> None:
    h = Harness()
    first = one(h.send(interaction("c1", "i1"), 0), TaskQueued)
    second = one(h.send(interaction("c2", "i2"), 5), TaskQueued)
    out = h.online("a1", 10, capacity={Channel.WEBCHAT: 1})
    assert [o.task.id for o in of(out, TaskOffered)] == [first.task_id]
    assert h.engine.waiting_in_order("default") == [second.task_id]


def test_decisions_have_deterministic_ids_and_kafka_keys() -> None:
    h = Harness()
    h.online("a1", 0)
    h.send(interaction("c1", "i1"), 1)
    queued, offered = h.decisions[-2:]
    assert queued.event_id == derive_id("ev-3", "0") and queued.key == queued.payload.task_id  # type: ignore[attr-defined]
    assert offered.event_id == derive_id("ev-3", "1") and offered.key == "a1"


def test_an_event_id_seen_before_is_ignored() -> None:
    h = Harness()
    h.online("a1", 0)
    engine: RoutingEngine = h.engine
    first = engine.handle("same", interaction("c1", "i1"), at(1))
    assert len(first) == 2
    assert engine.handle("same", interaction("c1", "i1"), at(1)) == []
    assert len(engine.state.tasks) == 1


def test_clock_never_goes_backwards() -> None:
    h = Harness()
    h.online("a1", 0)
    h.send(interaction("c1", "i1"), 100)
    h.send(interaction("c2", "i2"), 50)
    assert h.engine.state.clock == at(100)


def test_the_same_interaction_under_another_event_id_is_not_added_twice() -> None:
    h = Harness()
    h.send(interaction("c1", "i1"), 0)
    assert h.send(interaction("c1", "i1"), 1) == []
    (task,) = h.engine.state.tasks.values()
    assert len(task.messages) == 1

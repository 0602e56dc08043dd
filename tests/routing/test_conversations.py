"""One open conversation per customer: joining, live-channel takeover, sticky last agent, windows,
merges and erasure."""

from __future__ import annotations

from omnirouter_shared.contracts.agents import AgentStatus
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.identity import CustomerErased, CustomersMerged, CustomerSplit
from omnirouter_shared.contracts.routing import (
    ConversationMessage,
    OfferRescinded,
    TaskClosed,
    TaskOffered,
    TaskQueued,
)
from tests.routing.factories import T0, interaction, status
from tests.routing.harness import Harness, config, of, one


def test_a_call_while_an_email_waits_takes_over_its_priority_but_keeps_its_place() -> None:
    h = Harness()
    email = one(h.send(interaction("c1", "i1", channel=Channel.EMAIL), 0), TaskQueued)
    chat = one(h.send(interaction("c2", "i2", channel=Channel.WEBCHAT), 10), TaskQueued)
    out = h.send(interaction("c1", "i3", channel=Channel.VOICE), 20)
    queued = one(out, TaskQueued)
    assert queued.reason == "live_channel" and queued.channel is Channel.VOICE
    assert queued.task_id == email.task_id and queued.priority > chat.priority
    assert h.engine.waiting_in_order("default") == [email.task_id, chat.task_id]
    task = h.engine.state.tasks[email.task_id]
    assert task.enqueued_at == T0 and len(task.messages) == 2


def test_a_call_while_an_email_is_offered_rescinds_the_offer_for_the_call() -> None:
    h = Harness()
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1", channel=Channel.EMAIL), 1), TaskOffered)
    out = h.send(interaction("c1", "i2", channel=Channel.VOICE), 2)
    assert one(out, OfferRescinded).reason == "channel_changed"
    again = one(out, TaskOffered)
    assert again.task.id == offer.task.id and again.task.channel is Channel.VOICE


def test_after_completion_the_next_contact_waits_for_the_last_agent() -> None:
    h = Harness(config(timers={"wrapup_time_limit": 0, "last_agent_wait": 60}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1", channel=Channel.SMS), 1), TaskOffered)
    h.accept(offer, 2)
    h.complete(offer.task.id, "a1", 3)
    h.online("a2", 4)
    h.send(status("a1", AgentStatus.AWAY), 5)
    out = h.send(interaction("c1", "i2", channel=Channel.SMS), 6)
    assert of(out, TaskOffered) == []  # a2 is free, but the last agent a1 is only away
    back = one(h.send(status("a1"), 30), TaskOffered)
    assert back.agent_id == "a1"
    assert back.task.conversation_id == offer.task.conversation_id


def test_the_wait_for_the_last_agent_is_bounded() -> None:
    h = Harness(config(timers={"wrapup_time_limit": 0, "last_agent_wait": 60}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1", channel=Channel.SMS), 1), TaskOffered)
    h.accept(offer, 2)
    h.complete(offer.task.id, "a1", 3)
    h.send(status("a1", AgentStatus.AWAY), 4)
    h.online("a2", 5)
    h.send(interaction("c1", "i2", channel=Channel.SMS), 6)
    assert one(h.tick(66), TaskOffered).agent_id == "a2"


def test_never_waits_for_an_offline_last_agent() -> None:
    h = Harness(config(timers={"wrapup_time_limit": 0, "last_agent_wait": 600}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1", channel=Channel.SMS), 1), TaskOffered)
    h.accept(offer, 2)
    h.complete(offer.task.id, "a1", 3)
    h.send(status("a1", AgentStatus.OFFLINE), 4)
    h.online("a2", 5)
    assert one(h.send(interaction("c1", "i2", channel=Channel.SMS), 6), TaskOffered).agent_id == "a2"


def test_last_agent_going_offline_while_awaited_releases_the_task() -> None:
    h = Harness(config(timers={"wrapup_time_limit": 0, "last_agent_wait": 600}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1", channel=Channel.SMS), 1), TaskOffered)
    h.accept(offer, 2)
    h.complete(offer.task.id, "a1", 3)
    h.send(status("a1", AgentStatus.AWAY), 4)
    h.online("a2", 5)
    h.send(interaction("c1", "i2", channel=Channel.SMS), 6)
    assert one(h.send(status("a1", AgentStatus.OFFLINE), 7), TaskOffered).agent_id == "a2"


def test_conversation_closes_after_its_channel_window() -> None:
    h = Harness(config(timers={"wrapup_time_limit": 0}, conversation_windows={"sms": 100}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1", channel=Channel.SMS), 1), TaskOffered)
    h.accept(offer, 2)
    h.complete(offer.task.id, "a1", 3)
    assert len(h.engine.state.conversations) == 1
    h.tick(100)
    assert len(h.engine.state.conversations) == 1
    h.tick(101)
    assert h.engine.state.conversations == {}
    nxt = one(h.send(interaction("c1", "i2", channel=Channel.SMS), 102), TaskOffered)
    assert nxt.task.conversation_id != offer.task.conversation_id


def test_voice_conversation_closes_when_the_call_is_done() -> None:
    h = Harness(config(timers={"wrapup_time_limit": 0}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1", channel=Channel.VOICE), 1), TaskOffered)
    h.accept(offer, 2)
    closed = one(h.complete(offer.task.id, "a1", 3), TaskClosed)
    assert closed.reason == "completed" and closed.agent_id == "a1"
    assert h.engine.state.conversations == {}


def test_close_conversation_flag_closes_it_now() -> None:
    h = Harness(config(timers={"wrapup_time_limit": 0}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1", channel=Channel.EMAIL), 1), TaskOffered)
    h.accept(offer, 2)
    h.complete(offer.task.id, "a1", 3, close_conversation=True)
    assert h.engine.state.conversations == {}


def test_merge_folds_two_waiting_conversations_once() -> None:
    h = Harness()
    a = one(h.send(interaction("c1", "i1", channel=Channel.EMAIL), 0), TaskQueued)
    b = one(h.send(interaction("c2", "i2", channel=Channel.VOICE), 5), TaskQueued)
    merge = CustomersMerged(merge_id="m1", survivor_id="c1", merged_ids=("c2",), reason="same phone")
    out = h.send(merge, 6)
    closed = one(out, TaskClosed)
    assert closed.reason == "merged" and closed.task_id == b.task_id
    kept = h.engine.state.tasks[a.task_id]
    assert [m.interaction_id for m in kept.messages] == ["i1", "i2"]
    assert kept.channel is Channel.VOICE  # the folded live call brings its channel
    assert h.engine.waiting_in_order("default") == [a.task_id]
    assert h.send(merge, 7) == []  # same event id is new, but the merge id was applied
    assert list(h.engine.state.conversations.values())[0].customer_id == "c1"


def test_merge_sends_the_waiting_half_to_the_agent_already_working_the_other() -> None:
    h = Harness()
    h.online("a1", 0)
    offer = one(h.send(interaction("c2", "i1"), 1), TaskOffered)
    h.accept(offer, 2)
    h.send(interaction("c1", "i2", channel=Channel.EMAIL), 3)
    out = h.send(CustomersMerged(merge_id="m", survivor_id="c1", merged_ids=("c2",), reason="crm"), 4)
    msg = one(out, ConversationMessage)
    assert msg.agent_id == "a1" and msg.message.interaction_id == "i2" and msg.task_id == offer.task.id
    assert len(h.engine.state.tasks) == 1
    follow = one(h.send(interaction("c1", "i3"), 5), ConversationMessage)
    assert follow.task_id == offer.task.id


def test_split_changes_nothing_already_routed() -> None:
    h = Harness()
    h.send(interaction("c1", "i1"), 0)
    out = h.send(CustomerSplit(split_id="s", survivor_id="c1", restored_id="c9", identifier_keys=("x",)), 1)
    assert out == [] and len(h.engine.state.tasks) == 1


def test_erasure_closes_and_forgets_the_customer() -> None:
    h = Harness()
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.accept(offer, 2)
    out = h.send(CustomerErased(customer_id="c1", erased_at=T0), 3)
    closed = one(out, TaskClosed)
    assert closed.reason == "erased" and closed.agent_id == "a1"
    state = h.engine.state
    assert state.tasks == {} and state.conversations == {} and "c1" not in state.last_agent
    assert state.agents["a1"].used_units == 0

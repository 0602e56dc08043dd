"""Bot first with hand-off, transfers agent->agent and agent->queue."""

from __future__ import annotations

from omnirouter_shared.contracts.agents import AgentKind, AgentStatus, TransferRequested
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.routing import TaskOffered, TaskQueued
from tests.routing.factories import interaction, status
from tests.routing.harness import Harness, config, of, one

BOT_CFG = config(
    queues={
        "front": {"bot_first": True, "bot_wait": 20},
        "billing": {"required_skills": {"billing": 2}},
        "default": {},
    },
    entry=[{"channel": "webchat", "queue": "front"}],
    intents=[
        {
            "name": "refund",
            "queue": "billing",
            "required_skills": {"refunds": 1},
            "languages": {"en": {"keywords": ["zzz"]}},
        }
    ],
)


def test_new_conversations_go_to_the_bot_first_and_hand_off_with_intent_and_transcript() -> None:
    h = Harness(BOT_CFG)
    h.online("bot", 0, kind=AgentKind.BOT, capacity={Channel.WEBCHAT: 100})
    h.online("human", 0, skills={"billing": 3, "refunds": 2})
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    assert offer.agent_id == "bot"
    h.accept(offer, 2)
    handoff = TransferRequested(
        task_id=offer.task.id,
        from_agent_id="bot",
        to_queue="billing",
        intent="refund",
        transcript=("bot: how can I help?", "customer: refund my order"),
    )
    out = h.send(handoff, 10)
    queued = one(out, TaskQueued)
    assert queued.reason == "handoff" and queued.queue == "billing"
    human = one(out, TaskOffered)
    assert human.agent_id == "human" and human.task.intent == "refund"
    assert human.task.transcript == handoff.transcript
    assert human.task.required_skills == {"billing": 2, "refunds": 1}
    assert h.engine.state.agents["bot"].per_channel == {}


def test_without_a_bot_humans_take_over_after_bot_wait() -> None:
    h = Harness(BOT_CFG)
    h.online("human", 0)
    assert of(h.send(interaction("c1", "i1"), 1), TaskOffered) == []
    assert of(h.tick(20), TaskOffered) == []
    assert one(h.tick(21), TaskOffered).agent_id == "human"


def test_humans_never_get_bot_phase_work_and_bots_never_human_work() -> None:
    h = Harness(BOT_CFG)
    h.online("bot", 0, kind=AgentKind.BOT, capacity={Channel.EMAIL: 100})
    assert of(h.send(interaction("c1", "i1", channel=Channel.EMAIL), 1), TaskOffered) == []


def test_agent_to_agent_transfer_waits_for_the_target() -> None:
    h = Harness(config(timers={"transfer_wait": 30}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.accept(offer, 2)
    h.online("a3", 3)
    h.send(status("a2", AgentStatus.AWAY), 3)
    out = h.send(TransferRequested(task_id=offer.task.id, from_agent_id="a1", to_agent_id="a2"), 4)
    assert one(out, TaskQueued).reason == "transferred"
    assert of(out, TaskOffered) == []  # a3 is free, but the transfer targets a2
    assert one(h.send(status("a2"), 10), TaskOffered).agent_id == "a2"


def test_transfer_to_an_offline_agent_goes_to_the_queue() -> None:
    h = Harness()
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.accept(offer, 2)
    h.online("a3", 3)
    h.send(status("a2", AgentStatus.OFFLINE), 3)
    out = h.send(TransferRequested(task_id=offer.task.id, from_agent_id="a1", to_agent_id="a2"), 4)
    assert one(out, TaskOffered).agent_id == "a3"


def test_agent_to_queue_transfer_takes_the_new_queue_and_keeps_the_place() -> None:
    h = Harness(config(queues={"default": {}, "tech": {"required_skills": {"tech": 1}}}))
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.accept(offer, 2)
    out = h.send(TransferRequested(task_id=offer.task.id, from_agent_id="a1", to_queue="tech"), 5)
    assert one(out, TaskQueued).queue == "tech"
    assert of(out, TaskOffered) == []  # a1 passed it on and has no tech skill anyway
    assert h.engine.state.agents["a1"].used_units == 0
    assert one(h.online("t1", 6, skills={"tech": 1}), TaskOffered).task.id == offer.task.id
    assert h.engine.state.tasks[offer.task.id].enqueued_at == h.engine.state.tasks[offer.task.id].created_at


def test_transfer_from_someone_not_holding_the_task_is_ignored() -> None:
    h = Harness()
    h.online("a1", 0)
    offer = one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    h.accept(offer, 2)
    assert h.send(TransferRequested(task_id=offer.task.id, from_agent_id="x", to_queue="default"), 3) == []

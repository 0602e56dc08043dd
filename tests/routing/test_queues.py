"""Queue rules: intents, entry rules, required/preferred skills, escalation, business hours,
priority with aging, and the four agent-selection strategies."""

from __future__ import annotations

from typing import Any

import pytest

from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.routing import TaskClosed, TaskOffered, TaskQueued
from tests.routing.factories import interaction
from tests.routing.harness import Harness, config, of, one

INTENTS: list[dict[str, Any]] = [
    {
        "name": "billing",
        "queue": "billing",
        "languages": {
            "en": {"keywords": ["invoice", "refund"]},
            "es": {"keywords": ["factura"], "skills": {"spanish": 3}},
        },
    },
    {
        "name": "outage",
        "queue": "tech",
        "priority_boost": 7,
        "languages": {"en": {"regex": [r"not work(ing)?"]}},
    },
]


def queues(**extra: Any) -> dict[str, Any]:
    return {
        "default": {},
        "billing": {"required_skills": {"billing": 3}},
        "tech": {"required_skills": {"tech": 1}},
        **extra,
    }


def test_intent_keyword_chooses_queue_and_skills() -> None:
    h = Harness(config(queues=queues(), intents=INTENTS))
    q = one(h.send(interaction("c1", "i1", text="Where is my INVOICE?"), 0), TaskQueued)
    assert q.queue == "billing"
    task = h.engine.state.tasks[q.task_id]
    assert task.intent == "billing" and task.required == {"billing": 3}


def test_intent_language_adds_its_skills() -> None:
    h = Harness(config(queues=queues(), intents=INTENTS))
    q = one(h.send(interaction("c1", "i1", text="mi factura"), 0), TaskQueued)
    assert h.engine.state.tasks[q.task_id].required == {"billing": 3, "spanish": 3}
    h.online("a1", 1, skills={"billing": 5})
    assert h.engine.state.tasks[q.task_id].phase.value == "waiting"
    assert one(h.online("a2", 2, skills={"billing": 3, "spanish": 4}), TaskOffered).agent_id == "a2"


def test_intent_regex_and_priority_boost() -> None:
    h = Harness(config(queues=queues(), intents=INTENTS))
    q = one(h.send(interaction("c1", "i1", subject="app", text="it is not working"), 0), TaskQueued)
    assert q.queue == "tech" and h.engine.state.tasks[q.task_id].boost == 7


def test_keywords_match_whole_words_only() -> None:
    h = Harness(config(queues=queues(), intents=INTENTS))
    assert one(h.send(interaction("c1", "i1", text="refunding"), 0), TaskQueued).queue == "default"


def test_entry_rule_by_channel() -> None:
    h = Harness(config(queues=queues(), entry=[{"channel": "email", "queue": "tech"}]))
    assert one(h.send(interaction("c1", "i1", channel=Channel.EMAIL), 0), TaskQueued).queue == "tech"
    assert one(h.send(interaction("c2", "i2"), 0), TaskQueued).queue == "default"


def test_required_skill_level_is_enforced_and_preferred_skill_ranks() -> None:
    cfg = config(queues={"default": {"required_skills": {"billing": 3}, "preferred_skills": {"vip": 1}}})
    h = Harness(cfg)
    h.online("low", 0, skills={"billing": 2})
    h.online("plain", 1, skills={"billing": 3})
    h.online("vip", 2, skills={"billing": 3, "vip": 2})
    assert one(h.send(interaction("c1", "i1"), 3), TaskOffered).agent_id == "vip"
    assert one(h.send(interaction("c2", "i2"), 4), TaskOffered).agent_id == "vip"
    h.send(interaction("c3", "i3"), 5)
    assert one(h.send(interaction("c4", "i4"), 6), TaskOffered).agent_id == "plain"


def test_escalation_relaxes_then_overflows() -> None:
    cfg = config(
        queues=queues(
            billing={
                "required_skills": {"billing": 5},
                "escalation": [
                    {"after": 30, "relax_skills": {"billing": 2}},
                    {"after": 60, "overflow_to": "default"},
                ],
            }
        ),
        intents=INTENTS,
    )
    h = Harness(cfg)
    h.online("junior", 0, skills={"billing": 2})
    h.online("generalist", 0, skills={})
    q = one(h.send(interaction("c1", "i1", text="refund please"), 1), TaskQueued)
    assert of(h.tick(30), TaskOffered) == []
    out = h.tick(31)
    assert one(out, TaskQueued).reason == "escalated"
    offer = one(out, TaskOffered)
    assert offer.agent_id == "junior" and offer.task.required_skills == {"billing": 2}
    h.reject(offer, 32)
    out = h.tick(61)
    queued = one(out, TaskQueued)
    assert queued.queue == "default" and queued.task_id == q.task_id
    assert one(out, TaskOffered).agent_id == "generalist"


def test_escalation_drops_a_skill_to_preferred() -> None:
    cfg = config(
        queues={
            "default": {
                "required_skills": {"french": 3},
                "escalation": [{"after": 10, "drop_skills": ["french"]}],
            }
        }
    )
    h = Harness(cfg)
    h.online("a1", 0)
    q = one(h.send(interaction("c1", "i1"), 0), TaskQueued)
    assert one(h.tick(10), TaskOffered).agent_id == "a1"
    assert h.engine.state.tasks[q.task_id].preferred == {"french": 3}


HOURS = {"timezone": "Europe/Paris", "weekly": {"mon": ["09:00-12:00"]}}  # T0 is Monday 11:00 Paris


@pytest.mark.parametrize(
    ("seconds", "open_"), [(0, True), (3599, True), (3600, False), (7 * 86400 - 7200, True)]
)
def test_business_hours_in_the_queue_time_zone(seconds: int, open_: bool) -> None:
    cfg = config(queues={"default": {"business_hours": {**HOURS, "closed_action": "reject"}}})
    h = Harness(cfg)
    out = h.send(interaction("c1", "i1"), seconds)
    assert bool(of(out, TaskClosed)) is not open_


def test_closed_hours_reject_closes_with_reason() -> None:
    cfg = config(
        queues={
            "default": {"business_hours": {**HOURS, "closed_action": "reject", "closed_message": "closed"}}
        }
    )
    h = Harness(cfg)
    out = h.send(interaction("c1", "i1"), 4000)
    assert one(out, TaskClosed).reason == "closed_hours"
    assert h.engine.state.tasks == {} and h.engine.state.conversations == {}
    assert h.engine.stats(h.engine.state.clock).queues[0].rejected_closed == 1  # type: ignore[arg-type]


def test_closed_hours_overflow_and_holidays() -> None:
    bh = {**HOURS, "holidays": ["2026-03-02"], "closed_action": "overflow", "overflow_to": "tech"}
    h = Harness(config(queues=queues(default={"business_hours": bh})))
    assert one(h.send(interaction("c1", "i1"), 0), TaskQueued).queue == "tech"


def test_closed_hours_queue_action_still_queues() -> None:
    h = Harness(config(queues={"default": {"business_hours": {**HOURS, "closed_action": "queue"}}}))
    assert one(h.send(interaction("c1", "i1"), 4000), TaskQueued).queue == "default"


def test_aging_lets_old_low_priority_work_overtake_new_high_priority_work() -> None:
    cfg = config(
        queues={"default": {"aging_per_minute": 1.0}, "vip": {"priority": 5, "aging_per_minute": 1.0}},
        entry=[{"channel": "sms", "queue": "vip"}],
        channel_priority={},
    )
    one_slot = {Channel.EMAIL: 1, Channel.SMS: 1}
    cap = {"units": 20, "weights": {"email": 20, "sms": 20}}
    h = Harness(cfg.model_copy(update={"capacity": config(capacity=cap).capacity}))
    h.send(interaction("c1", "i1", channel=Channel.EMAIL), 0)
    h.send(interaction("c2", "i2", channel=Channel.SMS), 240)
    # At 300 s: the old one has 0 + 5 min = 5.0, the VIP one 5 + 1 min = 6.0 -> the VIP first.
    assert one(h.online("a1", 300, capacity=one_slot), TaskOffered).task.queue == "vip"
    h = Harness(cfg.model_copy(update={"capacity": config(capacity=cap).capacity}))
    old = one(h.send(interaction("c1", "i1", channel=Channel.EMAIL), 0), TaskQueued)
    h.send(interaction("c2", "i2", channel=Channel.SMS), 400)
    # At 500 s: the old one has 8.33, the VIP one 5 + 1.67 = 6.67 -> the old one first.
    assert one(h.online("a1", 500, capacity=one_slot), TaskOffered).task.id == old.task_id


def _four_agents(strategy: str) -> Harness:
    return Harness(config(queues={"default": {"strategy": strategy}}))


def test_longest_idle_picks_the_agent_idle_longest() -> None:
    h = _four_agents("longest_idle")
    h.online("b", 0)
    h.online("a", 10)
    assert one(h.send(interaction("c1", "i1"), 20), TaskOffered).agent_id == "b"


def test_least_occupied_picks_the_lightest_load() -> None:
    h = _four_agents("least_occupied")
    h.online("a", 0)
    h.online("b", 1)
    first = one(h.send(interaction("c1", "i1", channel=Channel.EMAIL), 2), TaskOffered)
    assert first.agent_id == "a"
    assert one(h.send(interaction("c2", "i2"), 3), TaskOffered).agent_id == "b"
    # a: 12 units, b: 20 units -> a again.
    assert one(h.send(interaction("c3", "i3"), 4), TaskOffered).agent_id == "a"


def test_highest_proficiency_picks_the_best_skilled() -> None:
    h = Harness(
        config(queues={"default": {"strategy": "highest_proficiency", "required_skills": {"tech": 1}}})
    )
    h.online("a", 0, skills={"tech": 2})
    h.online("b", 1, skills={"tech": 9})
    h.online("c", 2, skills={"tech": 5})
    assert one(h.send(interaction("c1", "i1"), 3), TaskOffered).agent_id == "b"


def test_round_robin_rotates() -> None:
    h = _four_agents("round_robin")
    for name in ("a", "b", "c"):
        h.online(name, 0)
    picked = [one(h.send(interaction(f"c{i}", f"i{i}"), i + 1), TaskOffered).agent_id for i in range(4)]
    assert picked == ["a", "b", "c", "a"]

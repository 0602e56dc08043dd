"""Snapshot/restore gives the same future decisions; reload keeps every task."""

from __future__ import annotations

import orjson
import pytest

from omnirouter_routing.config import RoutingConfig
from omnirouter_routing.core import RoutingEngine, SnapshotError
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.routing import TaskOffered, TaskQueued
from tests.routing.factories import at, interaction
from tests.routing.harness import Harness, config, of, one


def _busy_harness() -> Harness:
    h = Harness(config(timers={"offer_timeout": 10}))
    h.online("a1", 0, skills={"x": 1})
    offer = one(h.send(interaction("c1", "i1", channel=Channel.EMAIL), 1), TaskOffered)
    h.accept(offer, 2)
    h.send(interaction("c2", "i2"), 3)
    h.send(interaction("c3", "i3", channel=Channel.VOICE), 4)
    return h


def test_restored_engine_makes_identical_decisions() -> None:
    h = _busy_harness()
    data = h.engine.snapshot()
    twin = RoutingEngine.restore(h.engine.config, data)
    assert twin.snapshot() == data
    follow = [interaction("c4", "i4"), interaction("c2", "i5")]
    a = [h.engine.handle(f"f{i}", p, at(20 + i)) for i, p in enumerate(follow)]
    b = [twin.handle(f"f{i}", p, at(20 + i)) for i, p in enumerate(follow)]
    assert a == b
    assert h.engine.snapshot() == twin.snapshot()


def test_restored_engine_still_ignores_applied_events() -> None:
    h = _busy_harness()
    twin = RoutingEngine.restore(h.engine.config, h.engine.snapshot())
    assert twin.handle("ev-3", interaction("c1", "i1"), at(30)) == []


def test_snapshot_is_versioned() -> None:
    data = orjson.loads(_busy_harness().engine.snapshot())
    assert data["version"] == 1
    data["version"] = 99
    with pytest.raises(SnapshotError, match="version 99"):
        RoutingEngine.restore(RoutingConfig(), orjson.dumps(data))
    with pytest.raises(SnapshotError):
        RoutingEngine.restore(RoutingConfig(), b"not json")


def test_reconfigure_keeps_tasks_and_moves_orphans_to_the_default_queue() -> None:
    h = Harness(
        config(
            queues={"default": {}, "tech": {"required_skills": {"tech": 1}}},
            entry=[{"channel": "sms", "queue": "tech"}],
        )
    )
    q = one(h.send(interaction("c1", "i1", channel=Channel.SMS), 0), TaskQueued)
    h.send(interaction("c2", "i2"), 1)
    h.engine.reconfigure(RoutingConfig())
    assert h.engine.state.tasks[q.task_id].queue == "default"
    assert len(h.engine.waiting_in_order("default")) == 2
    h.online("a1", 2)
    assert len(h.engine.state.tasks) == 2


def test_reconfigure_rematches_at_the_next_event() -> None:
    h = Harness(config(capacity={"units": 20}))
    h.online("a1", 0)
    one(h.send(interaction("c1", "i1"), 1), TaskOffered)
    assert of(h.send(interaction("c2", "i2"), 1), TaskOffered) == []
    h.engine.reconfigure(RoutingConfig())  # 60 units: room for two more chats
    assert one(h.tick(2), TaskOffered).agent_id == "a1"
    assert of(h.tick(3), TaskOffered) == []

"""Kill and fail-over: instance A crashes mid-stream (no final commit, no final snapshot); instance B
in the same group restores from the snapshot topic, replays the inbox tail without re-publishing what A
already published, and goes on routing. No task is lost or offered twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from omnirouter_routing import metrics
from omnirouter_shared.contracts.agents import OfferAccepted, TaskCompleted, WrapupDone
from omnirouter_shared.contracts.common import Channel
from tests.routing.factories import agent, interaction, status
from tests.routing.integration.harness import (
    DecisionWatcher,
    Inbox,
    Routing,
    make_settings,
    start_routing,
    write_config,
)

pytestmark = pytest.mark.integration


def _replayed() -> float:
    return sum(
        s.value
        for m in metrics.EVENTS.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels.get("mode") == "replay"
    )


async def _snapshot_current(routing: Routing, timeout: float = 10) -> None:
    """Wait until every owned partition with state has a snapshot covering its last routing change."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        parts = routing.processor._parts.values()
        if all(not p.changed_since_snapshot for p in parts if p.engines):
            return
        assert asyncio.get_running_loop().time() < deadline, "no snapshot taken"
        await asyncio.sleep(0.05)


async def test_kill_and_failover_loses_and_duplicates_nothing(
    kafka_bootstrap: str,
    topic_prefix: str,
    routing_db: str,
    inbox: Inbox,
    decisions: DecisionWatcher,
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "routing.yaml", offer_timeout=60)
    # A snapshots a second after a change: the last events before the crash are in no snapshot.
    a = await start_routing(
        make_settings(kafka_bootstrap, routing_db, topic_prefix, config, snapshot_interval_s=1.0)
    )
    killed = False
    try:
        for agent_id in ("ag-1", "ag-2"):
            await inbox.send(agent(agent_id, capacity={Channel.WEBCHAT: 1}))
            await inbox.send(status(agent_id))
        await inbox.send(interaction("cust-1", "int-1", Channel.WEBCHAT))
        (offer1,) = await decisions.wait_for("task.offered")
        await inbox.send(
            OfferAccepted(
                offer_id=offer1.payload["offer_id"],
                task_id=offer1.payload["task"]["id"],
                agent_id=offer1.payload["agent_id"],
            )
        )
        await decisions.wait_for("task.assigned")
        await inbox.send(interaction("cust-2", "int-2", Channel.WEBCHAT))
        offers = await decisions.wait_for("task.offered", count=2)
        offer2 = offers[1]
        assert offer2.payload["agent_id"] != offer1.payload["agent_id"]
        await _snapshot_current(a)

        # After that snapshot: a third customer, who must wait (both agents are full).
        await inbox.send(interaction("cust-3", "int-3", Channel.WEBCHAT))
        (queued3,) = await decisions.wait_for("task.queued", lambda p: p["customer_id"] == "cust-3")
        replayed_before = _replayed()
        await a.kill()
        killed = True
    finally:
        if not killed:
            await a.stop()

    b = await start_routing(make_settings(kafka_bootstrap, routing_db, topic_prefix, config))
    try:
        # B rebuilt cust-3's wait by replaying the inbox after A's snapshot, without re-publishing it.
        assert _replayed() > replayed_before
        # The offer A made is still live in B: accepting it assigns the task.
        await inbox.send(
            OfferAccepted(
                offer_id=offer2.payload["offer_id"],
                task_id=offer2.payload["task"]["id"],
                agent_id=offer2.payload["agent_id"],
            )
        )
        await decisions.wait_for("task.assigned", count=2)
        # The first agent finishes: the waiting cust-3 task (queued before the crash) is offered to them.
        first_agent, task1 = offer1.payload["agent_id"], offer1.payload["task"]["id"]
        await inbox.send(TaskCompleted(task_id=task1, agent_id=first_agent))
        await inbox.send(WrapupDone(task_id=task1, agent_id=first_agent))
        (offer3,) = await decisions.wait_for("task.offered", lambda p: p["task"]["customer_id"] == "cust-3")
        assert offer3.payload["agent_id"] == first_agent
        assert offer3.payload["task"]["id"] == queued3.payload["task_id"]
        # And a brand-new contact is routed as usual.
        await inbox.send(interaction("cust-4", "int-4", Channel.WEBCHAT))
        await decisions.wait_for("task.queued", lambda p: p["customer_id"] == "cust-4")
        await asyncio.sleep(0.6)  # a few more ticks: nothing extra may appear

        ids = Counter(e.event_id for e in decisions.seen)
        assert [i for i, n in ids.items() if n > 1] == [], "a decision was published twice"
        offered = Counter(e.payload["task"]["customer_id"] for e in decisions.of_type("task.offered"))
        assert offered == {"cust-1": 1, "cust-2": 1, "cust-3": 1}
        assigned = Counter(e.payload["task_id"] for e in decisions.of_type("task.assigned"))
        assert assigned == {task1: 1, offer2.payload["task"]["id"]: 1}
        queued = Counter(e.payload["customer_id"] for e in decisions.of_type("task.queued"))
        assert queued["cust-3"] == 1 and queued["cust-4"] == 1
    finally:
        await b.stop()

"""routing as a service, through the real broker and PostgreSQL: offers, audit, one conversation per
customer, time-outs driven by ticks, the statistics API and configuration reloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from omnirouter_shared.contracts.common import Channel
from tests.routing.factories import agent, interaction, status
from tests.routing.integration.harness import (
    ADMIN,
    API_TOKEN,
    DecisionWatcher,
    Inbox,
    make_settings,
    start_routing,
    write_config,
)

pytestmark = pytest.mark.integration


def _webchat_only(agent_id: str) -> object:
    return agent(agent_id, capacity={Channel.WEBCHAT: 1})


async def test_one_offer_per_interaction_audited_and_one_per_customer(
    kafka_bootstrap: str,
    topic_prefix: str,
    routing_db: str,
    inbox: Inbox,
    decisions: DecisionWatcher,
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "routing.yaml", offer_timeout=60)
    routing = await start_routing(make_settings(kafka_bootstrap, routing_db, topic_prefix, config))
    try:
        await inbox.send(agent("ag-1", capacity={Channel.WEBCHAT: 2}))
        await inbox.send(status("ag-1"))
        first = interaction("cust-1", "int-1", Channel.WEBCHAT, text="hello")
        await inbox.send(first)
        (offer,) = await decisions.wait_for("task.offered")
        assert offer.payload["agent_id"] == "ag-1"
        assert offer.payload["task"]["customer_id"] == "cust-1"
        assert offer.routing_domain == "default"

        # The same customer again (another message, same conversation): it joins the offered task.
        await inbox.send(interaction("cust-1", "int-2", Channel.WEBCHAT, text="are you there?"))
        # A redelivered event (same event id) is applied once.
        replayed = await inbox.send(interaction("cust-2", "int-3", Channel.WEBCHAT))
        await inbox.send(interaction("cust-2", "int-3", Channel.WEBCHAT), event_id=replayed)
        offers = await decisions.wait_for("task.offered", count=2)
        await asyncio.sleep(1.0)  # several ticks: nothing else may be offered
        offers = decisions.of_type("task.offered")
        assert sorted(o.payload["task"]["customer_id"] for o in offers) == ["cust-1", "cust-2"]

        # Every published decision is in the audit table, once, with its routing facts.
        conn = await asyncpg.connect(routing_db)
        try:
            rows = await conn.fetch("SELECT * FROM routing.decisions ORDER BY decided_at, event_id")
        finally:
            await conn.close()
        assert {r["event_id"] for r in rows} == {e.event_id for e in decisions.seen}
        audited = {r["event_id"]: r for r in rows}[offer.event_id]
        assert audited["type"] == "task.offered"
        assert audited["agent_id"] == "ag-1"
        assert audited["task_id"] == offer.payload["task"]["id"]
        assert audited["queue"] == "general"
        assert audited["routing_domain"] == "default"
        assert audited["causation_id"] == offer.causation_id
    finally:
        await routing.stop()


async def test_offer_time_out_driven_by_ticks_re_offers(
    kafka_bootstrap: str,
    topic_prefix: str,
    routing_db: str,
    inbox: Inbox,
    decisions: DecisionWatcher,
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "routing.yaml", offer_timeout=1)
    routing = await start_routing(make_settings(kafka_bootstrap, routing_db, topic_prefix, config))
    try:
        for agent_id in ("ag-1", "ag-2"):
            await inbox.send(_webchat_only(agent_id))  # type: ignore[arg-type]
            await inbox.send(status(agent_id))
        await inbox.send(interaction("cust-1", "int-1", Channel.WEBCHAT))
        (first,) = await decisions.wait_for("task.offered")
        # Nobody answers: the next tick past expires_at rescinds it and offers it to the other agent.
        rescinded = await decisions.wait_for("offer.rescinded", timeout=10)
        assert rescinded[0].payload["reason"] == "timeout"
        assert rescinded[0].payload["offer_id"] == first.payload["offer_id"]
        offers = await decisions.wait_for("task.offered", count=2, timeout=10)
        second = offers[1]
        assert second.payload["task"]["id"] == first.payload["task"]["id"]
        assert {first.payload["agent_id"], second.payload["agent_id"]} == {"ag-1", "ag-2"}
    finally:
        await routing.stop()


async def test_statistics_api_auth_metrics_and_config_reload(
    kafka_bootstrap: str,
    topic_prefix: str,
    routing_db: str,
    inbox: Inbox,
    decisions: DecisionWatcher,
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "routing.yaml", offer_timeout=60)
    routing = await start_routing(make_settings(kafka_bootstrap, routing_db, topic_prefix, config))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    system = {"Authorization": f"Bearer {API_TOKEN}"}
    try:
        await inbox.send(interaction("cust-1", "int-1", Channel.WEBCHAT))
        await inbox.send(interaction("cust-2", "int-2", Channel.WEBCHAT))
        await decisions.wait_for("task.queued", count=2)
        async with aiohttp.ClientSession(routing.url) as http:
            async with http.get("/v1/stats") as r:
                assert r.status == 401
                assert (await r.json())["error"] == "unauthorized"
            async with http.get("/v1/stats", headers={"Authorization": "Bearer nope"}) as r:
                assert r.status == 401
            async with http.get("/v1/stats", headers=system) as r:
                assert r.status == 200
                body = await r.json()
            (domain,) = body["domains"]
            general = next(q for q in domain["queues"] if q["queue"] == "general")
            assert general["waiting"] == 2
            assert general["oldest_wait"] >= 0
            assert domain["agents"]["available"] == 0

            async with http.get("/v1/queues/general", headers=system) as r:
                assert r.status == 200
                queue = await r.json()
            assert len(queue["domains"][0]["waiting_tasks"]) == 2
            async with http.get("/v1/queues/nowhere", headers=system) as r:
                assert r.status == 404
                assert (await r.json())["error"] == "not_found"

            async with http.get("/metrics") as r:
                text = await r.text()
            assert 'omni_routing_queue_waiting{domain="default",queue="general"} 2.0' in text

            bad = "queues: {general: {strategy: fastest}}\ndefault_queue: general\n"
            async with http.post("/v1/config/validate", data=bad, headers=system) as r:
                assert r.status == 403
            async with http.post(
                "/v1/config/validate", data=bad, headers={**admin, "Content-Type": "application/yaml"}
            ) as r:
                assert r.status == 422
                problem = await r.json()
            assert problem["error"] == "invalid_config"
            assert any(p.startswith("queues.general.strategy") for p in problem["problems"])
            async with http.post("/v1/config/validate", data="{nope", headers=admin) as r:
                assert r.status == 400
            good = '{"default_queue": "general", "queues": {"general": {}, "vip": {"priority": 9}}}'
            async with http.post(
                "/v1/config/validate", data=good, headers={**admin, "Content-Type": "application/json"}
            ) as r:
                assert r.status == 200
                assert (await r.json())["queues"] == ["general", "vip"]

            async with http.get("/openapi.yaml") as r:
                assert r.status == 200
                assert "/v1/stats" in await r.text()

        # Hot reload: an invalid file is refused and the running configuration stays...
        config.write_text("queues: {general: {strategy: fastest}}\n", encoding="utf-8")
        await asyncio.sleep(0.8)
        assert set(routing.processor.config.queues) == {"general"}
        # ...a valid one is applied without a restart, and routing goes on under it.
        config.write_text(
            "default_queue: general\nqueues:\n  general: {}\n  vip: {priority: 9}\n", encoding="utf-8"
        )
        deadline = asyncio.get_running_loop().time() + 5
        while "vip" not in routing.processor.config.queues:
            assert asyncio.get_running_loop().time() < deadline, "configuration not reloaded"
            await asyncio.sleep(0.1)
        await inbox.send(agent("ag-1", capacity={Channel.WEBCHAT: 2}))
        await inbox.send(status("ag-1"))
        await decisions.wait_for("task.offered", count=2)
    finally:
        await routing.stop()

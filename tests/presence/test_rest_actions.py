"""Every desktop action over REST, with the events it produces, presence states and their history."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from omnirouter_shared.contracts.routing import (
    AgentStateForced,
    ConversationMessage,
    TaskAssigned,
    TaskClosed,
    TaskMessage,
)
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.topics import Topic
from tests.presence.harness import (
    ADMIN,
    API_TOKEN,
    create_agent,
    make_settings,
    offered,
    routing_stub,
    running_presence,
    task_view,
    wait_snapshot,
    watch,
)

pytestmark = pytest.mark.integration


async def _identity_stub(port: int, calls: list[str]) -> web.AppRunner:
    async def timeline(request: web.Request) -> web.Response:
        calls.append(request.match_info["id"])
        if request.headers.get("Authorization") != f"Bearer {API_TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response(
            {"customer_id": request.match_info["id"], "items": [{"summary": "email: refund promised"}]}
        )

    app = web.Application()
    app.router.add_get("/v1/customers/{id}/timeline", timeline)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def test_rest_actions_produce_their_events_and_states(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    identity_port = free_port()
    calls: list[str] = []
    stub = await _identity_stub(identity_port, calls)
    settings = make_settings(
        kafka_bootstrap, await make_database(), topic_prefix, identity_url=f"http://127.0.0.1:{identity_port}"
    )
    try:
        async with (
            watch(kafka_bootstrap, topic_prefix, Topic.ROUTING_INBOX) as inbox,
            watch(kafka_bootstrap, topic_prefix, Topic.REPLIES_OUTBOUND) as replies,
            running_presence(settings) as presence,
            routing_stub(settings) as routing,
            aiohttp.ClientSession() as http,
        ):
            created = await create_agent(http, presence, capacity={"sms": 1})
            agent_id, token = created["id"], created["token"]
            auth = {"Authorization": f"Bearer {token}"}
            base = f"{presence.url}/v1/agents/{agent_id}"

            async with http.put(f"{base}/status", json={"status": "away"}, headers=auth) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["reason"] == "break"
            async with http.put(
                f"{base}/status", json={"status": "away", "reason": "nap"}, headers=auth
            ) as r:
                assert r.status == 422 and (await r.json())["error"] == "invalid_reason"
            async with http.put(f"{base}/status", json={"status": "available"}, headers=auth) as r:
                assert (await r.json())["state"] == "available"
            await inbox.wait_for(
                "agent.status_changed", lambda p: p["status"] == "away" and p["reason"] == "break"
            )

            task = task_view()
            offer = offered(agent_id, task)
            await routing(offer, agent_id)
            await wait_snapshot(http, presence, agent_id, token, lambda s: len(s["offers"]) == 1)
            async with http.get(f"{base}/tasks/{task.id}/customer", headers=auth) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["items"][0]["summary"] == "email: refund promised"
            assert calls == [task.customer_id]
            declined = offered(agent_id, task_view())
            await routing(declined, agent_id)
            await wait_snapshot(http, presence, agent_id, token, lambda s: len(s["offers"]) == 2)
            async with http.post(
                f"{base}/offers/{declined.offer_id}/reject", json={"reason": "not my language"}, headers=auth
            ) as r:
                assert r.status == 202, await r.text()
            _, rejected = await inbox.wait_for("offer.rejected")
            assert rejected.payload == {
                "offer_id": declined.offer_id,
                "task_id": declined.task.id,
                "agent_id": agent_id,
                "reason": "not my language",
            }
            async with http.post(f"{base}/offers/{declined.offer_id}/accept", headers=auth) as r:
                assert r.status == 409 and (await r.json())["error"] == "offer_not_pending"
            async with http.post(f"{base}/offers/{offer.offer_id}/accept", headers=auth) as r:
                assert r.status == 202, await r.text()
            await inbox.wait_for("offer.accepted", lambda p: p["offer_id"] == offer.offer_id)

            await routing(TaskAssigned(task_id=task.id, agent_id=agent_id, task=task), agent_id)
            # One SMS at a time: the agent is busy while holding it.
            state = await wait_snapshot(
                http, presence, agent_id, token, lambda s: s["state"]["state"] == "busy"
            )
            assert state["state"]["state"] == "busy" and state["state"]["load"] == {"sms": 1}
            assert [t["task_id"] for t in state["tasks"]] == [task.id]

            message = TaskMessage(
                **{**task.messages[0].model_dump(), "text": "Any news?", "interaction_id": "i-2"}
            )
            await routing(
                ConversationMessage(
                    task_id=task.id, agent_id=agent_id, conversation_id=task.conversation_id, message=message
                ),
                agent_id,
            )
            state = await wait_snapshot(
                http, presence, agent_id, token, lambda s: len(s["tasks"][0]["task"]["messages"]) == 2
            )
            assert [m["text"] for m in state["tasks"][0]["task"]["messages"]] == [
                "Hi, my bill is wrong",
                "Any news?",
            ]

            async with http.post(
                f"{base}/tasks/{task.id}/replies", json={"text": "Refund is on its way"}, headers=auth
            ) as r:
                assert r.status == 202, await r.text()
                reply_id = (await r.json())["reply_id"]
            key, reply = await replies.wait_for("reply.requested")
            assert key == task.customer_id
            assert reply.payload["reply_id"] == reply_id
            assert reply.payload["text"] == "Refund is on its way"
            assert reply.payload["channel"] == "sms"
            assert reply.payload["to"]["value"] == "+14155550100"
            assert reply.payload["from_"]["value"] == "+18005550199"
            assert reply.payload["author"] == f"agent:{agent_id}"
            async with http.post(
                f"{base}/tasks/{task.id}/replies",
                json={"text": "Refund is on its way", "reply_id": reply_id},
                headers=auth,
            ) as r:
                assert r.status == 202  # a retried reply: same event id, kept once with the task
            async with http.get(f"{base}/state", headers=auth) as r:
                kept = (await r.json())["tasks"][0]["task"]["replies"]
            assert [(k["reply_id"], k["text"]) for k in kept] == [(reply_id, "Refund is on its way")]

            async with http.post(
                f"{base}/tasks/{task.id}/complete", json={"disposition": "resolved"}, headers=auth
            ) as r:
                assert r.status == 202 and (await r.json())["state"] == "wrapup"
            async with http.post(f"{base}/tasks/{task.id}/complete", headers=auth) as r:
                assert r.status == 409, await r.text()
            await inbox.wait_for("task.completed", lambda p: p["disposition"] == "resolved")
            async with http.get(f"{base}/state", headers=auth) as r:
                assert (await r.json())["state"]["state"] == "wrapup"
            async with http.post(f"{base}/tasks/{task.id}/wrapup-done", headers=auth) as r:
                assert r.status == 202
            await inbox.wait_for("wrapup.done", lambda p: p["task_id"] == task.id)
            async with http.get(f"{base}/state", headers=auth) as r:
                body = await r.json()
                assert body["state"]["state"] == "available" and body["tasks"] == []
            # The task is done: its customer is no longer this agent's to see.
            async with http.get(f"{base}/tasks/{task.id}/customer", headers=auth) as r:
                assert r.status == 404

            # A transfer to a queue, and a task closed by routing.
            second, third = task_view(), task_view()
            for t in (second, third):
                await routing(TaskAssigned(task_id=t.id, agent_id=agent_id, task=t), agent_id)
            await wait_snapshot(http, presence, agent_id, token, lambda s: len(s["tasks"]) == 2)
            async with http.post(
                f"{base}/tasks/{second.id}/transfer", json={"to_queue": "tier2", "note": "VIP"}, headers=auth
            ) as r:
                assert r.status == 202, await r.text()
            _, transfer = await inbox.wait_for("task.transfer_requested")
            assert transfer.payload["to_queue"] == "tier2" and transfer.payload["from_agent_id"] == agent_id
            async with http.post(
                f"{base}/tasks/{second.id}/transfer", json={"to_queue": "x", "to_agent_id": "y"}, headers=auth
            ) as r:
                assert r.status == 422
            await routing(
                TaskClosed(
                    task_id=third.id,
                    conversation_id=third.conversation_id,
                    customer_id=third.customer_id,
                    agent_id=agent_id,
                    reason="abandoned",
                ),
                agent_id,
            )
            await wait_snapshot(http, presence, agent_id, token, lambda s: s["tasks"] == [])

            # Routing may change the agent's state itself (missed offers): the desktop is told.
            await routing(
                AgentStateForced(agent_id=agent_id, status="away", reason="missed_offers"), agent_id
            )
            state = await wait_snapshot(
                http, presence, agent_id, token, lambda s: s["state"]["status"] == "away"
            )
            assert state["state"]["reason"] == "missed_offers"

            async with http.get(f"{base}/history", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
                history = (await r.json())["history"]
            states = [h["state"] for h in reversed(history)]
            assert states[:6] == ["offline", "away", "available", "busy", "wrapup", "available"], states
    finally:
        await stub.cleanup()


async def test_wrap_up_outlives_routing_closing_the_completed_task(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    """Routing answers TaskCompleted with task.closed(completed) at once, while the agent is still in
    wrap-up; the task stays in wrap-up until the agent ends it, and wrapup_done is accepted and published
    (it was refused with 409, so routing held the agent's slot until its wrap-up limit: found by make
    chaos as 50-second waits for customers of that agent)."""
    settings = make_settings(kafka_bootstrap, await make_database(), topic_prefix)
    async with (
        watch(kafka_bootstrap, topic_prefix, Topic.ROUTING_INBOX) as inbox,
        running_presence(settings) as presence,
        routing_stub(settings) as routing,
        aiohttp.ClientSession() as http,
    ):
        created = await create_agent(http, presence, capacity={"sms": 2})
        agent_id, token = created["id"], created["token"]
        auth = {"Authorization": f"Bearer {token}"}
        base = f"{presence.url}/v1/agents/{agent_id}"
        async with http.put(f"{base}/status", json={"status": "available"}, headers=auth) as r:
            assert r.status == 200, await r.text()
        task, marker = task_view(), task_view()
        await routing(TaskAssigned(task_id=task.id, agent_id=agent_id, task=task), agent_id)
        await wait_snapshot(http, presence, agent_id, token, lambda s: len(s["tasks"]) == 1)
        async with http.post(f"{base}/tasks/{task.id}/complete", headers=auth) as r:
            assert r.status == 202 and (await r.json())["state"] == "wrapup"
        closed = TaskClosed(
            task_id=task.id,
            conversation_id=task.conversation_id,
            customer_id=task.customer_id,
            agent_id=agent_id,
            reason="completed",
        )
        await routing(closed, agent_id)
        # Same key, so applied after the task.closed: once it shows, the close has been handled.
        await routing(TaskAssigned(task_id=marker.id, agent_id=agent_id, task=marker), agent_id)
        state = await wait_snapshot(
            http, presence, agent_id, token, lambda s: marker.id in {t["task_id"] for t in s["tasks"]}
        )
        assert {t["task_id"]: t["state"] for t in state["tasks"]}[task.id] == "wrapup"
        async with http.post(f"{base}/tasks/{task.id}/wrapup-done", headers=auth) as r:
            assert r.status == 202, await r.text()
        await inbox.wait_for("wrapup.done", lambda p: p["task_id"] == task.id)

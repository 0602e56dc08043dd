"""Who may call what: nothing but health endpoints without a token, admin endpoints with the admin
token only, and an agent only on its own offers, tasks and customers."""

from __future__ import annotations

import aiohttp
import pytest

from omnirouter_shared.contracts.routing import TaskAssigned
from tests.presence.harness import (
    ADMIN,
    create_agent,
    make_settings,
    offered,
    routing_stub,
    running_presence,
    task_view,
    wait_snapshot,
)

pytestmark = pytest.mark.integration


async def test_authorisation_matrix(kafka_bootstrap: str, make_database, topic_prefix: str) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(kafka_bootstrap, await make_database(), topic_prefix)
    async with (
        running_presence(settings) as presence,
        routing_stub(settings) as routing,
        aiohttp.ClientSession() as http,
    ):
        alice = await create_agent(http, presence)
        bob = await create_agent(http, presence)
        a, b = alice["id"], bob["id"]
        task = task_view()
        offer = offered(a, task)
        await routing(offer, a)
        held = task_view()
        await routing(TaskAssigned(task_id=held.id, agent_id=a, task=held), a)
        await wait_snapshot(
            http, presence, a, alice["token"], lambda s: len(s["offers"]) == len(s["tasks"]) == 1
        )

        url = presence.url
        agent_urls = [
            ("GET", f"/v1/agents/{a}/state"),
            ("PUT", f"/v1/agents/{a}/status"),
            ("POST", f"/v1/agents/{a}/heartbeat"),
            ("POST", f"/v1/agents/{a}/offers/{offer.offer_id}/accept"),
            ("POST", f"/v1/agents/{a}/offers/{offer.offer_id}/reject"),
            ("POST", f"/v1/agents/{a}/tasks/{held.id}/complete"),
            ("POST", f"/v1/agents/{a}/tasks/{held.id}/wrapup-done"),
            ("POST", f"/v1/agents/{a}/tasks/{held.id}/transfer"),
            ("POST", f"/v1/agents/{a}/tasks/{held.id}/replies"),
            ("GET", f"/v1/agents/{a}/tasks/{held.id}/customer"),
            ("GET", f"/v1/agents/{a}/ws"),
        ]
        admin_urls = [
            ("GET", "/v1/agents"),
            ("POST", "/v1/agents"),
            ("GET", f"/v1/agents/{a}"),
            ("PATCH", f"/v1/agents/{a}"),
            ("POST", f"/v1/agents/{a}/disable"),
            ("POST", f"/v1/agents/{a}/token"),
            ("GET", f"/v1/agents/{a}/history"),
            ("GET", "/v1/wallboard"),
        ]
        for method, path in agent_urls + admin_urls:
            async with http.request(method, url + path, json={}) as r:
                assert r.status == 401, (method, path, r.status)
                body = await r.json()
                assert body["error"] == "unauthorized" and body["reason"]
        for path in ("/healthz", "/readyz", "/metrics"):
            async with http.get(url + path) as r:
                assert r.status == 200, path

        bob_auth = {"Authorization": f"Bearer {bob['token']}"}
        for method, path in agent_urls + admin_urls:  # Bob's token on Alice's URLs and on admin URLs
            async with http.request(method, url + path, json={}, headers=bob_auth) as r:
                assert r.status == 403, (method, path, r.status)
        admin_auth = {"Authorization": f"Bearer {ADMIN}"}
        for method, path in agent_urls:  # the admin does not act as an agent
            async with http.request(method, url + path, json={}, headers=admin_auth) as r:
                assert r.status == 403, (method, path, r.status)

        # Bob, on his own URLs, naming Alice's offer and task: forbidden.
        own = f"{url}/v1/agents/{b}"
        for method, path, body in [
            ("POST", f"{own}/offers/{offer.offer_id}/accept", {}),
            ("POST", f"{own}/offers/{offer.offer_id}/reject", {}),
            ("POST", f"{own}/tasks/{held.id}/complete", {}),
            ("POST", f"{own}/tasks/{held.id}/replies", {"text": "hello"}),
            ("POST", f"{own}/tasks/{held.id}/transfer", {"to_queue": "q"}),
            ("GET", f"{own}/tasks/{held.id}/customer", None),
            ("GET", f"{own}/tasks/{task.id}/customer", None),
        ]:
            async with http.request(method, path, json=body, headers=bob_auth) as r:
                assert r.status == 403, (method, path, r.status, await r.text())
        async with http.post(f"{own}/tasks/nope/complete", headers=bob_auth) as r:
            assert r.status == 404
        async with http.ws_connect(
            f"{url.replace('http', 'ws', 1)}/v1/agents/{b}/ws", headers=bob_auth
        ) as ws:
            await ws.receive_json(timeout=5)
            await ws.send_json({"type": "accept", "offer_id": offer.offer_id})
            error = await ws.receive_json(timeout=5)
            assert error["type"] == "error" and error["error"] == "forbidden"

        # Bad input: JSON errors with a reason.
        async with http.post(f"{url}/v1/agents", data=b"{nope", headers=admin_auth) as r:
            assert r.status == 400 and (await r.json())["error"] == "invalid_json"
        async with http.post(f"{url}/v1/agents", json={"id": "x y", "name": "n"}, headers=admin_auth) as r:
            assert r.status == 422 and "id" in (await r.json())["reason"]
        async with http.post(f"{url}/v1/agents", json={"id": a, "name": "again"}, headers=admin_auth) as r:
            assert r.status == 409

        # Token rotation: the old token stops working at once.
        async with http.post(f"{url}/v1/agents/{b}/token", headers=admin_auth) as r:
            new_token = (await r.json())["token"]
        async with http.get(f"{own}/state", headers=bob_auth) as r:
            assert r.status == 403
        async with http.get(f"{own}/state", headers={"Authorization": f"Bearer {new_token}"}) as r:
            assert r.status == 200

        # Disabling an agent closes its open desktops, and it cannot sign in again.
        new_auth = {"Authorization": f"Bearer {new_token}"}
        async with http.ws_connect(
            f"{url.replace('http', 'ws', 1)}/v1/agents/{b}/ws", headers=new_auth
        ) as ws:
            await ws.receive_json(timeout=5)
            async with http.post(f"{url}/v1/agents/{b}/disable", headers=admin_auth) as r:
                assert r.status == 200 and (await r.json())["enabled"] is False
            frames = []
            while (msg := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                frames.append(msg.json())
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 4001), msg
            assert any(f.get("error") == "agent_disabled" for f in frames), frames
        async with http.get(f"{own}/state", headers={"Authorization": f"Bearer {new_token}"}) as r:
            assert r.status == 403 and (await r.json())["error"] == "agent_disabled"

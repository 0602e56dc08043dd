"""The HTTP API through the app factory, the real PostgreSQL and the real broker (for its events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from omnirouter_identity.app import build_app
from omnirouter_identity.resolution import Outcome
from tests.identity.test_service import ADMIN, read, settings

CRM = {"Authorization": "Bearer crm-token"}
Client = TestClient[web.Request, web.Application]
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def client(kafka_bootstrap: str, topic_prefix: str, identity_url: str) -> AsyncIterator[Client]:
    app = await build_app(settings(kafka_bootstrap, topic_prefix, identity_url, consume=False))
    c: Client = TestClient(TestServer(app))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


async def record(client: Client, body: dict[str, object], headers: dict[str, str] = CRM) -> dict[str, object]:
    resp = await client.post("/v1/interactions", json=body, headers=headers)
    assert resp.status in (200, 201), await resp.text()
    data: dict[str, object] = await resp.json()
    return data


async def test_authentication_and_errors(client: Client) -> None:
    resp = await client.get("/v1/suggestions")
    assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    resp = await client.get("/v1/suggestions", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    resp = await client.get("/v1/customers/nobody", headers=CRM)
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.post("/v1/interactions", data=b"{", headers=CRM)
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_body"
    resp = await client.post(
        "/v1/interactions", json={"entry_id": "1", "source": "crm", "summary": "x"}, headers=CRM
    )
    assert resp.status == 400 and "exactly one" in (await resp.json())["reason"]
    resp = await client.post(
        "/v1/interactions",
        json={
            "entry_id": "1",
            "source": "crm",
            "summary": "x",
            "identifier": {"kind": "phone", "value": "anonymous"},
        },
        headers=CRM,
    )
    assert resp.status == 422 and (await resp.json())["error"] == "unusable_identifier"
    resp = await client.delete("/v1/customers/nobody", headers=CRM)
    assert resp.status == 403
    spec = yaml.safe_load(await (await client.get("/openapi.yaml")).text())
    assert "/v1/customers/{id}/timeline" in spec["paths"]


async def test_other_systems_record_into_one_timeline(client: Client) -> None:
    store = await record(
        client,
        {
            "entry_id": "till-1",
            "source": "store-42",
            "identifier": {"kind": "crm", "value": "C-1"},
            "direction": "inbound",
            "kind": "purchase",
            "summary": "bought a kettle",
            "occurred_at": T0.isoformat(),
        },
    )
    customer = str(store["customer_id"])
    again = await record(
        client,
        {
            "entry_id": "till-1",
            "source": "store-42",
            "identifier": {"kind": "crm", "value": "C-1"},
            "summary": "x",
        },
    )
    assert again == {**store, "recorded": False}
    for i, channel in enumerate(["email", "sms", "email"]):
        resp = await client.post(
            f"/v1/customers/{customer}/interactions",
            json={
                "entry_id": f"camp-{i}",
                "source": "campaign-spring",
                "channel": channel,
                "direction": "outbound",
                "kind": "promotion",
                "summary": f"20% off #{i}",
                "occurred_at": (T0 + timedelta(days=i + 1)).isoformat(),
            },
            headers=CRM,
        )
        assert resp.status == 201
    page1 = await (await client.get(f"/v1/customers/{customer}/timeline?limit=2", headers=CRM)).json()
    assert [i["summary"] for i in page1["items"]] == ["20% off #2", "20% off #1"]
    page2 = await (
        await client.get(
            f"/v1/customers/{customer}/timeline?limit=2&cursor={page1['next_cursor']}", headers=CRM
        )
    ).json()
    assert [i["summary"] for i in page2["items"]] == ["20% off #0", "bought a kettle"]
    assert page2["next_cursor"] is None
    emails = await (await client.get(f"/v1/customers/{customer}/timeline?channel=email", headers=CRM)).json()
    assert [i["summary"] for i in emails["items"]] == ["20% off #2", "20% off #0"]
    bad = await client.get(f"/v1/customers/{customer}/timeline?cursor=zzz", headers=CRM)
    assert bad.status == 400
    profile = await (await client.get(f"/v1/customers/{customer}", headers=CRM)).json()
    assert [(i["kind"], i["value"], i["tier"]) for i in profile["identifiers"]] == [("crm", "C-1", "strong")]


async def test_consent_split_erasure(client: Client, kafka_bootstrap: str, topic_prefix: str) -> None:
    a = str(
        (
            await record(
                client,
                {
                    "entry_id": "a",
                    "source": "crm",
                    "identifier": {"kind": "email", "value": "A@x.io"},
                    "summary": "hi",
                    "occurred_at": T0.isoformat(),
                },
            )
        )["customer_id"]
    )
    b = str(
        (
            await record(
                client,
                {
                    "entry_id": "b",
                    "source": "crm",
                    "identifier": {"kind": "phone", "value": "+14155550123"},
                    "summary": "yo",
                    "occurred_at": (T0 + timedelta(seconds=1)).isoformat(),
                },
            )
        )["customer_id"]
    )
    assert a != b
    resp = await client.put(
        f"/v1/customers/{b}/consent",
        json={
            "preferred_channel": "sms",
            "changes": [{"channel": "sms", "opted_out": True}],
            "reason": "asked on the phone",
        },
        headers=CRM,
    )
    assert resp.status == 200
    consent = await resp.json()
    assert consent["preferred_channel"] == "sms"
    assert consent["addresses"][0]["address"] == "phone:+14155550123" and consent["addresses"][0]["opted_out"]

    resp = await client.get("/v1/suggestions", headers=CRM)
    assert resp.status == 200 and (await resp.json())["items"] == []

    # A contact proving both ids merges them (the survivor is the older profile; the alias resolves).
    from omnirouter_identity.app import COMPONENTS  # the service's own pool, for a verified contact

    pool = client.app[COMPONENTS].pool
    resolver = client.app[COMPONENTS].resolver
    from omnirouter_identity.store.graph import Observation
    from omnirouter_identity.store.tx import serializable
    from tests.identity.helpers import addr

    obs = Observation(source="test", observed_at=T0 + timedelta(minutes=5), interaction_id="both")

    async def work(conn: asyncpg.Connection) -> Outcome:
        return await resolver.resolve(
            conn, [addr("email", "a@x.io"), addr("phone", "+14155550123")], obs, source_id="both"
        )

    outcome = await serializable(pool, work)
    assert [(m.survivor_id, m.absorbed_id) for m in outcome.merges] == [(a, b)]
    alias = await (await client.get(f"/v1/customers/{b}", headers=CRM)).json()
    assert alias["id"] == a and alias["requested_id"] == b and alias["aliases"] == [b]

    resp = await client.post(f"/v1/customers/{a}/split", json={"restore_id": b}, headers=CRM)
    assert resp.status == 403
    resp = await client.post(f"/v1/customers/{a}/split", json={"restore_id": b}, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["identifier_keys"] == ["phone:+14155550123"]
    again = await client.post(f"/v1/customers/{a}/split", json={"restore_id": b}, headers=ADMIN)
    assert again.status == 409 and (await again.json())["error"] == "not_merged"
    restored = await (await client.get(f"/v1/customers/{b}", headers=CRM)).json()
    assert restored["id"] == b and restored["consent"]["addresses"][0]["opted_out"]

    resp = await client.delete(f"/v1/customers/{b}", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["identifiers_erased"] == 1
    gone = await client.get(f"/v1/customers/{b}", headers=CRM)
    assert gone.status == 410 and (await gone.json())["error"] == "erased"

    profiles_topic = await read(kafka_bootstrap, f"{topic_prefix}omni.identity.profiles", 2)
    # The split (restored id) and then the erasure's tombstone, on the restored profile's key.
    assert [(m.key.decode(), m.value is None) for m in profiles_topic] == [(b, False), (b, True)]
    consent_topic = await read(kafka_bootstrap, f"{topic_prefix}omni.identity.consent", 2)
    assert [(m.key, m.value is None) for m in consent_topic][-1] == (b"phone:+14155550123|sms", True)

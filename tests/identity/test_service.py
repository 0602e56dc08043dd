"""The service end to end on the real broker and PostgreSQL: an InteractionReceived on the inbound
topic comes out as InteractionResolved on the routing inbox; STOP publishes ConsentChanged; the HTTP
API shows the timeline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer

from omnirouter_identity.app import build_app
from omnirouter_identity.events import event_id
from omnirouter_identity.settings import IdentitySettings
from omnirouter_shared.contracts.common import Address, AddressKind, Channel, Vendor
from omnirouter_shared.contracts.envelope import decode_envelope, new_envelope
from omnirouter_shared.contracts.interactions import InteractionReceived, interaction_id_for
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.topics import Topic

ADMIN = {"Authorization": "Bearer admin-secret"}


def settings(bootstrap: str, prefix: str, database_url: str, *, consume: bool = True) -> IdentitySettings:
    return IdentitySettings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        database_url=database_url,
        admin_token="admin-secret",
        api_tokens=("crm-token",),
        business_addresses=("+18005550199",),
        kafka_rebalance_timeout_ms=1000,
        kafka_session_timeout_ms=6000,
        shutdown_timeout_s=5,
        consume=consume,
    )


def received(vendor_id: str, text: str, *, at: datetime, sender: str = "+14155550100") -> InteractionReceived:
    return InteractionReceived(
        interaction_id=interaction_id_for(Vendor.TWILIO, vendor_id),
        channel=Channel.SMS,
        vendor=Vendor.TWILIO,
        vendor_message_id=vendor_id,
        sender=Address(kind=AddressKind.PHONE, value=sender, display_name="Ada"),
        recipient=Address(kind=AddressKind.PHONE, value="+18005550199"),
        text=text,
        received_at=at,
    )


async def read(bootstrap: str, topic: str, want: int, timeout: float = 30.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < want and asyncio.get_running_loop().time() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(msgs)
    finally:
        await consumer.stop()
    return out


async def test_inbound_interaction_is_resolved_onto_the_routing_inbox(
    kafka_bootstrap: str, topic_prefix: str, identity_url: str
) -> None:
    s = settings(kafka_bootstrap, topic_prefix, identity_url)
    client = TestClient(TestServer(await build_app(s)))
    await client.start_server()
    producer = EventProducer(s, client_id="test-gateway")
    await producer.start()
    try:
        t0 = datetime.now(UTC) - timedelta(minutes=5)
        promised = received("SM1", "Refund promised by email?", at=t0)
        stop = received("SM2", "STOP", at=t0 + timedelta(seconds=30))
        for msg in (promised, stop):
            env = new_envelope(
                msg, producer="channel-gateway", event_id=msg.interaction_id, routing_domain="care"
            )
            await producer.publish(Topic.INTERACTIONS_INBOUND, msg.sender.key, env)
            await producer.publish(Topic.INTERACTIONS_INBOUND, msg.sender.key, env)  # a redelivery

        inbox = await read(kafka_bootstrap, s.topic(Topic.ROUTING_INBOX), 2)
        envs = [decode_envelope(m.value) for m in inbox]
        assert [e.type for e in envs] == ["interaction.resolved", "interaction.resolved"]
        assert {m.key for m in inbox} == {b"care"}
        assert envs[0].event_id == event_id("resolved", promised.interaction_id)
        first, second = envs[0].payload, envs[1].payload
        assert first["customer"]["is_new"] and not second["customer"]["is_new"]
        assert first["customer"]["customer_id"] == second["customer"]["customer_id"]
        assert first["customer"]["display_name"] == "Ada"
        assert [h["summary"] for h in second["recent_history"]] == ["Refund promised by email?"]
        customer_id = first["customer"]["customer_id"]

        consent = await read(kafka_bootstrap, s.topic(Topic.IDENTITY_CONSENT), 1)
        assert len(consent) == 1 and consent[0].key == b"phone:+14155550100"
        change = orjson.loads(consent[0].value)["payload"]
        assert (
            change["opted_out"] is True
            and change["channel"] == "sms"
            and change["customer_id"] == customer_id
        )

        resp = await client.get(
            f"/v1/customers/{customer_id}/timeline", headers={"Authorization": "Bearer crm-token"}
        )
        assert resp.status == 200
        body = await resp.json()
        assert [i["summary"] for i in body["items"]] == ["STOP", "Refund promised by email?"]
        resp = await client.get(f"/v1/customers/{customer_id}/consent", headers=ADMIN)
        assert (await resp.json())["addresses"][0]["opted_out"] is True
    finally:
        await producer.stop()
        await client.close()

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
        assert len(consent) == 1 and consent[0].key.startswith(b"phone:+14155550100|")
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


async def test_merges_and_the_timeline_feeds(
    kafka_bootstrap: str, topic_prefix: str, identity_url: str
) -> None:
    from omnirouter_shared.contracts.replies import (
        DeliveryState,
        ReplyDeliveryStatus,
        ReplyPurpose,
        ReplyRequested,
    )
    from omnirouter_shared.contracts.routing import TaskOffered, TaskView

    s = settings(kafka_bootstrap, topic_prefix, identity_url)
    client = TestClient(TestServer(await build_app(s)))
    await client.start_server()
    producer = EventProducer(s, client_id="test-gateway")
    await producer.start()
    try:
        t0 = datetime.now(UTC) - timedelta(minutes=5)
        sms = received("SM10", "hello", at=t0, sender="+14155550111")
        mail = InteractionReceived(
            interaction_id=interaction_id_for(Vendor.SENDGRID, "mail-1"),
            channel=Channel.EMAIL,
            vendor=Vendor.SENDGRID,
            vendor_message_id="mail-1",
            sender=Address(kind=AddressKind.EMAIL, value="ada@x.io"),
            recipient=Address(kind=AddressKind.EMAIL, value="support@shop.io"),
            subject="Order 7",
            received_at=t0 + timedelta(seconds=1),
        )
        # A logged-in web chat that proves both: the two profiles become one.
        chat = InteractionReceived(
            interaction_id=interaction_id_for(Vendor.WEBCHAT, "chat-1"),
            channel=Channel.WEBCHAT,
            vendor=Vendor.WEBCHAT,
            vendor_message_id="chat-1",
            sender=Address(kind=AddressKind.WEBCHAT, value="visitor-1"),
            recipient=Address(kind=AddressKind.WEBCHAT, value="site"),
            claimed_identifiers=(
                Address(kind=AddressKind.EMAIL, value="ada@x.io"),
                Address(kind=AddressKind.PHONE, value="+14155550111"),
            ),
            text="where is my order?",
            received_at=t0 + timedelta(seconds=2),
        )
        # Different senders land on different partitions: the chat goes only after both were resolved.
        for msg in (sms, mail):
            env = new_envelope(msg, producer="channel-gateway", event_id=msg.interaction_id)
            await producer.publish(Topic.INTERACTIONS_INBOUND, msg.sender.key, env)
        assert len(await read(kafka_bootstrap, s.topic(Topic.ROUTING_INBOX), 2)) == 2
        env = new_envelope(chat, producer="channel-gateway", event_id=chat.interaction_id)
        await producer.publish(Topic.INTERACTIONS_INBOUND, chat.sender.key, env)
        inbox = [
            decode_envelope(m.value) for m in await read(kafka_bootstrap, s.topic(Topic.ROUTING_INBOX), 4)
        ]
        assert [e.type for e in inbox] == [
            "interaction.resolved",
            "interaction.resolved",
            "customer.merged",
            "interaction.resolved",
        ]
        # The customer seen first (the SMS, by its received time) survives, whatever the processing order.
        ids = {
            e.payload["interaction"]["interaction_id"]: e.payload["customer"]["customer_id"]
            for e in inbox[:2]
        }
        first, second = ids[sms.interaction_id], ids[mail.interaction_id]
        merge = inbox[2].payload
        assert merge["survivor_id"] == first and merge["merged_ids"] == [second]
        assert inbox[3].payload["customer"]["customer_id"] == first
        assert sorted(h["channel"] for h in inbox[3].payload["recent_history"]) == ["email", "sms"]
        compacted = await read(kafka_bootstrap, s.topic(Topic.IDENTITY_PROFILES), 1)
        assert compacted[0].key == second.encode()

        # Routing offered the task; an agent sent a promotion that the gateway refused (opted out).
        view = TaskView(
            id="task-1",
            conversation_id="conv-1",
            customer_id=second,  # an alias: recorded on the survivor
            channel=Channel.WEBCHAT,
            queue="orders",
            priority=1,
            created_at=t0,
        )
        offer = TaskOffered(
            offer_id="offer-1", agent_id="a-7", task=view, expires_at=t0 + timedelta(minutes=1)
        )
        reply = ReplyRequested(
            reply_id="r-1",
            customer_id=first,
            author="agent:a-7",
            channel=Channel.SMS,
            to=Address(kind=AddressKind.PHONE, value="+14155550111"),
            text="Spring sale: 20% off",
            purpose=ReplyPurpose.MARKETING,
        )
        refused = ReplyDeliveryStatus(
            reply_id="r-1",
            customer_id=first,
            channel=Channel.SMS,
            to=reply.to,
            state=DeliveryState.REFUSED_OPT_OUT,
            occurred_at=t0 + timedelta(seconds=5),
        )
        await producer.publish(
            Topic.ROUTING_DECISIONS,
            "a-7",
            new_envelope(offer, producer="routing", occurred_at=t0 + timedelta(seconds=3)),
        )
        await producer.publish(
            Topic.REPLIES_OUTBOUND,
            first,
            new_envelope(reply, producer="agent-presence", occurred_at=t0 + timedelta(seconds=4)),
        )
        await producer.publish(Topic.REPLIES_STATUS, first, new_envelope(refused, producer="channel-gateway"))
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            body = await (
                await client.get(
                    f"/v1/customers/{second}/timeline", headers={"Authorization": "Bearer crm-token"}
                )
            ).json()
            kinds = [i["kind"] for i in body["items"]]
            if len(kinds) >= 6 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert body["customer_id"] == first
        assert kinds == ["delivery", "promotion", "offer", "message", "message", "message"]
        assert body["items"][0]["summary"] == "reply refused opt out"
    finally:
        await producer.stop()
        await client.close()

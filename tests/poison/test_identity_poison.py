"""identity-resolution's two consumer groups: the inbound one (omni.interactions.inbound) and the
timeline one (omni.routing.decisions, omni.replies.outbound, omni.replies.status). Poison on each topic
is dead-lettered, and the valid event after it, on the same partition, is still applied."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

from omnirouter_identity.app import MIGRATIONS, SCHEMA, build_app
from omnirouter_identity.kafka_intake import INBOUND_GROUP, TIMELINE_GROUP
from omnirouter_shared.contracts.common import Address, AddressKind, Channel
from omnirouter_shared.contracts.envelope import decode_envelope, new_envelope
from omnirouter_shared.contracts.replies import DeliveryState, ReplyDeliveryStatus, ReplyRequested
from omnirouter_shared.contracts.routing import TaskOffered, TaskView
from omnirouter_shared.db import migrate
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.topics import Topic
from tests.identity.test_service import read, received, settings
from tests.poison.kit import DeadLetters, assert_dead_lettered, send_poisons

pytestmark = pytest.mark.integration

CRM = {"Authorization": "Bearer crm-token"}


async def test_both_consumers_dead_letter_poison_and_move_on(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    url = await make_database()
    await migrate(url, SCHEMA, MIGRATIONS)
    s = settings(kafka_bootstrap, topic_prefix, url)
    client: TestClient = TestClient(TestServer(await build_app(s)))  # type: ignore[type-arg]
    await client.start_server()
    producer = EventProducer(s, client_id="test-poison")
    await producer.start()
    try:
        async with DeadLetters(kafka_bootstrap, topic_prefix) as dead:
            # Inbound: poison, then a contact from the same sender (same key, same partition).
            t0 = datetime.now(UTC) - timedelta(minutes=5)
            contact = received("SM-poison", "after the poison", at=t0)
            env = new_envelope(contact, producer="channel-gateway", event_id=contact.interaction_id)
            key = contact.sender.key
            sent = await send_poisons(producer, Topic.INTERACTIONS_INBOUND, key, env)
            await producer.publish(Topic.INTERACTIONS_INBOUND, key, env)
            (resolved,) = await read(kafka_bootstrap, s.topic(Topic.ROUTING_INBOX), 1)
            customer = decode_envelope(resolved.value).payload["customer"]["customer_id"]
            found = await dead.wait_for(INBOUND_GROUP, Topic.INTERACTIONS_INBOUND, len(sent))
            assert_dead_lettered(found, sent, key, INBOUND_GROUP, s.topic(Topic.INTERACTIONS_INBOUND))

            # Timeline: poison on each of its topics, each followed by a valid event on its key.
            to = Address(kind=AddressKind.PHONE, value="+14155550100")
            view = TaskView(
                id="task-p",
                conversation_id="conv-p",
                customer_id=customer,
                channel=Channel.SMS,
                queue="care",
                priority=1,
                created_at=t0,
            )
            valid: list[tuple[Topic, str, BaseModel, str]] = [
                (
                    Topic.ROUTING_DECISIONS,
                    "a-7",
                    TaskOffered(
                        offer_id="o-p", agent_id="a-7", task=view, expires_at=t0 + timedelta(minutes=1)
                    ),
                    "routing",
                ),
                (
                    Topic.REPLIES_OUTBOUND,
                    customer,
                    ReplyRequested(
                        reply_id="r-p",
                        customer_id=customer,
                        author="agent:a-7",
                        channel=Channel.SMS,
                        to=to,
                        text="hi",
                    ),
                    "agent-presence",
                ),
                (
                    Topic.REPLIES_STATUS,
                    customer,
                    ReplyDeliveryStatus(
                        reply_id="r-p",
                        customer_id=customer,
                        channel=Channel.SMS,
                        to=to,
                        state=DeliveryState.DELIVERED,
                        occurred_at=t0 + timedelta(seconds=5),
                    ),
                    "channel-gateway",
                ),
            ]
            poisoned: dict[Topic, tuple[str, list[tuple[str, bytes | None]]]] = {}
            for i, (topic, k, payload, by) in enumerate(valid):
                e = new_envelope(payload, producer=by, occurred_at=t0 + timedelta(seconds=2 + i))
                poisoned[topic] = (k, await send_poisons(producer, topic, k, e))
                await producer.publish(topic, k, e)
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                r = await client.get(f"/v1/customers/{customer}/timeline", headers=CRM)
                kinds = [i["kind"] for i in (await r.json())["items"]]
                if len(kinds) >= 4 or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert sorted(kinds) == ["delivery", "message", "message", "offer"], kinds
            for topic, (k, poison) in poisoned.items():
                found = await dead.wait_for(TIMELINE_GROUP, topic, len(poison))
                assert_dead_lettered(found, poison, k, TIMELINE_GROUP, s.topic(topic))
    finally:
        await producer.stop()
        await client.close()

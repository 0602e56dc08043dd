"""agent-presence's decisions consumer (group agent-presence, omni.routing.decisions): poison is
dead-lettered and the next decision still reaches the agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from omnirouter_presence.kafka_decisions import GROUP_ID
from omnirouter_shared.contracts.envelope import new_envelope
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.topics import Topic
from tests.poison.kit import DeadLetters, assert_dead_lettered, send_poisons
from tests.presence.harness import (
    create_agent,
    make_settings,
    offered,
    routing_stub,
    running_presence,
    task_view,
    wait_feed,
)

pytestmark = pytest.mark.integration


async def test_decisions_consumer_dead_letters_poison_and_moves_on(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    settings = make_settings(kafka_bootstrap, await make_database(), topic_prefix)
    async with (
        running_presence(settings) as presence,
        routing_stub(settings) as publish,
        DeadLetters(kafka_bootstrap, topic_prefix) as dead,
        aiohttp.ClientSession() as http,
    ):
        agent = await create_agent(http, presence)
        offer = offered(agent["id"], task_view())
        producer = EventProducer(settings, client_id="test-poison")
        await producer.start()
        try:
            sample = new_envelope(offer, producer="routing")
            sent = await send_poisons(producer, Topic.ROUTING_DECISIONS, agent["id"], sample)
        finally:
            await producer.stop()
        await publish(offer, agent["id"])
        state = await wait_feed(http, presence, agent["id"], agent["token"], 1)
        assert offer.offer_id in str(state), state  # the offer after the poison reached the agent
        found = await dead.wait_for(GROUP_ID, Topic.ROUTING_DECISIONS, len(sent))
        assert_dead_lettered(found, sent, agent["id"], GROUP_ID, settings.topic(Topic.ROUTING_DECISIONS))

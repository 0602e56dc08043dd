"""channel-gateway's consumer groups: channel-gateway-outbound (omni.replies.outbound) and
channel-gateway-consent (omni.identity.consent: compacted, where a tombstone is an erasure, so none is
sent as poison; one without a key cannot even be produced). Poison is dead-lettered; the next event is applied."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from omnirouter_gateway.app import COMPONENTS
from omnirouter_gateway.delivery import REPLIES_GROUP
from omnirouter_gateway.outbound_intake import CONSENT_GROUP
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.envelope import new_envelope
from omnirouter_shared.contracts.identity import ConsentChanged
from omnirouter_shared.topics import Topic
from tests.gateway.fake_vendors import ADDRESSES, FakeVendors, outbound_gateway, reply, statuses
from tests.poison.kit import DeadLetters, assert_dead_lettered, send_poisons

pytestmark = pytest.mark.integration


@pytest.fixture
async def fake() -> AsyncIterator[FakeVendors]:
    vendors = FakeVendors()
    await vendors.start()
    try:
        yield vendors
    finally:
        await vendors.stop()


async def test_both_consumers_dead_letter_poison_and_move_on(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]], fake: FakeVendors
) -> None:
    async with (
        outbound_gateway(kafka_bootstrap, await make_database(), topic_prefix, fake) as gw,
        DeadLetters(kafka_bootstrap, topic_prefix) as dead,
    ):
        producer = gw.app[COMPONENTS].producer
        status_reader = await gw.reader(Topic.REPLIES_STATUS)

        # Replies: poison, then a reply to the same customer (same key, same partition) is delivered.
        r = reply(Channel.SMS)
        env = new_envelope(r, producer="agent-presence")
        sent = await send_poisons(producer, Topic.REPLIES_OUTBOUND, r.customer_id, env)
        await producer.publish(Topic.REPLIES_OUTBOUND, r.customer_id, env)
        assert r.reply_id in statuses(await status_reader.wait_for(1, timeout_s=20))
        found = await dead.wait_for(REPLIES_GROUP, Topic.REPLIES_OUTBOUND, len(sent))
        assert_dead_lettered(
            found, sent, r.customer_id, REPLIES_GROUP, gw.settings.topic(Topic.REPLIES_OUTBOUND)
        )

        # Consent: poison on the address's key, then its opt-out is mirrored.
        phone = ADDRESSES[Channel.SMS]
        fact = ConsentChanged(
            customer_id="c-1",
            address=phone,
            channel=Channel.SMS,
            opted_out=True,
            reason="STOP",
            changed_at=datetime.now(UTC),
        )
        env = new_envelope(fact, producer="identity-resolution")
        sent = await send_poisons(producer, Topic.IDENTITY_CONSENT, phone.key, env, tombstone=False)
        await producer.publish(Topic.IDENTITY_CONSENT, phone.key, env)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while True:
            async with gw.pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT opted_out, reason FROM opt_outs WHERE address_key = $1 AND channel = 'sms'",
                    phone.key,
                )
            if row is not None or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert row is not None and (row["opted_out"], row["reason"]) == (True, "STOP")
        found = await dead.wait_for(CONSENT_GROUP, Topic.IDENTITY_CONSENT, len(sent))
        assert_dead_lettered(found, sent, phone.key, CONSENT_GROUP, gw.settings.topic(Topic.IDENTITY_CONSENT))

"""Opt-outs: identity's compacted consent topic mirrored into the gateway, and applied to replies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omnirouter_gateway.app import COMPONENTS
from omnirouter_shared.contracts.common import Address, Channel
from omnirouter_shared.contracts.envelope import new_envelope
from omnirouter_shared.contracts.identity import ConsentChanged
from omnirouter_shared.contracts.replies import ReplyPurpose
from omnirouter_shared.topics import Topic
from tests.gateway.fake_vendors import ADDRESSES, FakeVendors, publish, reply, statuses
from tests.gateway.harness import Gateway

pytestmark = pytest.mark.integration

T0 = datetime(2025, 1, 1, tzinfo=UTC)


async def consent(
    gw: Gateway,
    address: Address,
    channel: Channel | None,
    opted_out: bool,
    at: datetime,
    reason: str = "STOP",
) -> None:
    event = ConsentChanged(
        customer_id="c-1", address=address, channel=channel, opted_out=opted_out, reason=reason, changed_at=at
    )
    await gw.app[COMPONENTS].producer.publish(
        Topic.IDENTITY_CONSENT, address.key, new_envelope(event, producer="identity-resolution")
    )


async def rows(gw: Gateway, address: Address) -> dict[str, Any]:
    async with gw.pool.acquire() as conn:
        found = await conn.fetch(
            "SELECT channel, opted_out, reason FROM opt_outs WHERE address_key = $1", address.key
        )
    return {r["channel"]: (r["opted_out"], r["reason"]) for r in found}


async def until(gw: Gateway, address: Address, expected: dict[str, Any], timeout_s: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (current := await rows(gw, address)) != expected:
        assert loop.time() < deadline, f"opt_outs for {address.key}: {current}, expected {expected}"
        await asyncio.sleep(0.05)


async def test_marketing_to_an_opted_out_address_is_refused_while_service_replies_go(
    gw: Gateway, fake: FakeVendors
) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    phone = ADDRESSES[Channel.SMS]
    await consent(gw, phone, Channel.SMS, True, T0)
    await until(gw, phone, {"sms": (True, "STOP")})

    promo = reply(Channel.SMS, "20% off today", purpose=ReplyPurpose.MARKETING)
    answer = reply(Channel.SMS, "Your refund is on its way")
    await publish(gw, promo, answer)
    found = statuses(await status_reader.wait_for(2))
    assert found[promo.reply_id]["state"] == "refused_opt_out"
    assert found[promo.reply_id]["vendor_message_id"] is None
    assert found[answer.reply_id]["state"] == "sent"
    assert [r.form["Body"] for r in fake.sent("twilio")] == [["Your refund is on its way"]]


async def test_an_opt_out_from_every_channel_and_its_erasure(gw: Gateway, fake: FakeVendors) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    wa = ADDRESSES[Channel.WHATSAPP]
    await consent(gw, wa, None, True, T0, reason="unsubscribe")
    await until(gw, wa, {"*": (True, "unsubscribe")})
    refused = reply(Channel.WHATSAPP, "new offer", purpose=ReplyPurpose.MARKETING)
    await publish(gw, refused)
    (status,) = statuses(await status_reader.wait_for(1)).values()
    assert status["state"] == "refused_opt_out"
    assert fake.requests == []

    # Erasure: identity tombstones the address key; the opt-out row goes with it.
    await gw.app[COMPONENTS].producer.send_raw(Topic.IDENTITY_CONSENT, wa.key, None)
    await until(gw, wa, {})
    allowed = reply(Channel.WHATSAPP, "new offer", purpose=ReplyPurpose.MARKETING)
    await publish(gw, allowed)
    found = statuses(await status_reader.wait_for(2))
    assert found[allowed.reply_id]["state"] == "sent"
    assert len(fake.sent("meta")) == 1


async def test_older_consent_never_overwrites_newer_and_replays_are_harmless(gw: Gateway) -> None:
    email = ADDRESSES[Channel.EMAIL]
    newer, older = T0 + timedelta(hours=1), T0
    await consent(gw, email, Channel.EMAIL, True, newer, reason="unsubscribe link")
    await consent(gw, email, Channel.EMAIL, False, older, reason="agent recorded")
    await consent(gw, email, Channel.SMS, False, older, reason="START")
    await until(gw, email, {"email": (True, "unsubscribe link"), "sms": (False, "START")})
    # The same facts again (a redelivery or a re-read of the compacted topic): nothing changes.
    await consent(gw, email, Channel.EMAIL, True, newer, reason="unsubscribe link")
    await consent(gw, email, Channel.EMAIL, True, newer + timedelta(seconds=1), reason="second unsubscribe")
    await until(gw, email, {"email": (True, "second unsubscribe"), "sms": (False, "START")})


async def test_poison_on_the_consent_topic_is_dead_lettered(gw: Gateway) -> None:
    dead = await gw.reader(Topic.DEAD_LETTER)
    await gw.app[COMPONENTS].producer.send_raw(Topic.IDENTITY_CONSENT, "phone:+1", b'{"not": "consent"}')
    phone = ADDRESSES[Channel.SMS]
    await consent(gw, phone, Channel.SMS, True, T0)
    await until(gw, phone, {"sms": (True, "STOP")})  # the consumer moved past the poison
    (record,) = await dead.wait_for(1)
    assert record == {"not": "consent"}

"""Outbound delivery through the real broker and PostgreSQL to fake vendor APIs that check every request
like the vendors do."""

from __future__ import annotations

import asyncio
import random

import pytest

from omnirouter_gateway.app import COMPONENTS
from omnirouter_gateway.delivery import backoff_delay
from omnirouter_gateway.outbound.registry import build_senders, choose_sender, parse_channel_vendors
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Channel, Vendor
from omnirouter_shared.topics import Topic
from tests.conftest import MakeDatabase
from tests.gateway.fake_vendors import (
    EMAIL_FROM,
    META_PHONE_NUMBER_ID,
    SMS_FROM,
    FakeVendors,
    eventually,
    outbound_gateway,
    publish,
    reply,
    statuses,
)
from tests.gateway.harness import Gateway

pytestmark = pytest.mark.integration


# -- pure parts ----------------------------------------------------------------------------------------
def test_backoff_is_full_jitter_capped_and_honours_retry_after() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 0.5, 4.0, None, rng) for n in range(1, 10) for _ in range(50)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert max(backoff_delay(1, 0.5, 4.0, None, rng) for _ in range(200)) <= 0.5
    assert backoff_delay(1, 0.5, 4.0, 30.0, rng) == 30.0


def test_vendor_choice_prefers_the_reply_then_the_channel_default_then_any_configured() -> None:
    fake = FakeVendors()
    settings = GatewaySettings.from_env(fake.env())
    senders = build_senders(settings)
    defaults = parse_channel_vendors(settings.channel_vendors)
    assert choose_sender(reply(Channel.EMAIL), senders, defaults).vendor is Vendor.SENDGRID
    assert (
        choose_sender(reply(Channel.EMAIL, vendor=Vendor.MAILGUN), senders, defaults).vendor is Vendor.MAILGUN
    )
    assert (
        choose_sender(reply(Channel.SMS), senders, parse_channel_vendors("sms=vonage")).vendor
        is Vendor.VONAGE
    )
    unconfigured = {k: v for k, v in fake.env().items() if not k.startswith("SENDGRID")}
    others = build_senders(GatewaySettings.from_env(unconfigured))
    assert choose_sender(reply(Channel.EMAIL), others, defaults).vendor is Vendor.MAILGUN
    with pytest.raises(Exception, match="does not deliver telegram"):
        choose_sender(reply(Channel.TELEGRAM, vendor=Vendor.TWILIO), senders, defaults)
    no_telegram = {k: v for k, v in fake.env().items() if not k.startswith("TELEGRAM")}
    without = build_senders(GatewaySettings.from_env(no_telegram))
    with pytest.raises(Exception, match="no configured sender delivers telegram"):
        choose_sender(reply(Channel.TELEGRAM), without, defaults)
    with pytest.raises(Exception, match="no sender for vendor internal"):
        choose_sender(reply(Channel.SMS, vendor=Vendor.INTERNAL), senders, defaults)
    with pytest.raises(ValueError, match="GATEWAY_CHANNEL_VENDORS"):
        parse_channel_vendors("sms=pigeon")


# -- end to end ----------------------------------------------------------------------------------------
async def test_every_channel_reaches_its_vendor_once_with_the_right_body(
    gw: Gateway, fake: FakeVendors
) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    sms = reply(Channel.SMS, "SMS body")
    wa = reply(Channel.WHATSAPP, "WhatsApp body")
    messenger = reply(Channel.MESSENGER, "Messenger body")
    email = reply(Channel.EMAIL, "Email body", subject="Your order", in_reply_to="abc@mail.example.org")
    mailgun = reply(Channel.EMAIL, "Mailgun body", vendor=Vendor.MAILGUN, in_reply_to="<x1@example.org>")
    vonage = reply(Channel.SMS, "Vonage body", vendor=Vendor.VONAGE)
    telegram = reply(Channel.TELEGRAM, "Telegram body")
    everything = [sms, wa, messenger, email, mailgun, vonage, telegram]
    await publish(gw, *everything)

    found = statuses(await status_reader.wait_for(len(everything), timeout_s=20))
    assert {s["state"] for s in found.values()} == {"sent"}, found
    assert set(found) == {r.reply_id for r in everything}
    assert fake.refused == []

    (tw,) = fake.sent("twilio")
    assert tw.form["To"] == ["+14155550100"] and tw.form["From"] == [SMS_FROM]
    assert tw.form["Body"] == ["SMS body"]
    assert tw.form["StatusCallback"] == [gw.settings.public_url + "/webhooks/twilio/messaging"]
    assert found[sms.reply_id]["vendor_message_id"].startswith("SM")

    meta = {r.path: r for r in fake.sent("meta")}
    assert set(meta) == {f"/v21.0/{META_PHONE_NUMBER_ID}/messages", "/v21.0/me/messages"}
    wa_req = meta[f"/v21.0/{META_PHONE_NUMBER_ID}/messages"].json
    assert wa_req["to"] == "14155550100" and wa_req["text"]["body"] == "WhatsApp body"
    assert found[wa.reply_id]["vendor_message_id"].startswith("wamid.")
    ms_req = meta["/v21.0/me/messages"].json
    assert ms_req["recipient"] == {"id": "6254432198765"} and ms_req["message"] == {"text": "Messenger body"}

    (sg,) = fake.sent("sendgrid")
    assert sg.json["personalizations"][0]["to"] == [{"email": "ana@example.org", "name": "Ana"}]
    assert sg.json["from"] == {"email": EMAIL_FROM} and sg.json["subject"] == "Your order"
    assert sg.json["headers"] == {
        "In-Reply-To": "<abc@mail.example.org>",
        "References": "<abc@mail.example.org>",
    }
    assert sg.json["content"] == [{"type": "text/plain", "value": "Email body"}]

    (mg,) = fake.sent("mailgun")
    assert mg.form["to"] == ['"Ana" <ana@example.org>'] and mg.form["text"] == ["Mailgun body"]
    assert mg.form["h:In-Reply-To"] == ["<x1@example.org>"]
    assert found[mailgun.reply_id]["vendor_message_id"].endswith("@mg.example.com>")

    (vg,) = fake.sent("vonage")
    assert vg.json["channel"] == "sms" and vg.json["message_type"] == "text"
    assert vg.json["to"] == "14155550100" and vg.json["from"] == SMS_FROM.lstrip("+")
    assert vg.json["text"] == "Vonage body"

    (tg,) = fake.sent("telegram")
    assert tg.json == {"chat_id": 987654321, "text": "Telegram body"}
    assert found[telegram.reply_id]["vendor_message_id"].startswith("987654321:")

    keys = {k for k in status_reader.keys}
    assert keys == {r.customer_id.encode() for r in everything}


async def test_a_reply_published_twice_is_sent_once(gw: Gateway, fake: FakeVendors) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    r = reply(Channel.SMS)
    await publish(gw, r, r)
    await status_reader.wait_for(1)
    await publish(gw, r)
    assert len(await status_reader.settle(1.5)) == 1
    assert len(fake.sent("twilio")) == 1


async def test_transient_failures_are_retried_until_the_vendor_accepts(
    gw: Gateway, fake: FakeVendors
) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    fake.fail("twilio", 429, times=1, retry_after="0.3")
    fake.fail("twilio", 503, times=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    r = reply(Channel.SMS)
    await publish(gw, r)
    (status,) = statuses(await status_reader.wait_for(1)).values()
    assert status["state"] == "sent" and status["attempts"] == 3
    assert loop.time() - started >= 0.3  # Retry-After honoured
    assert len([x for x in fake.requests if x.vendor == "twilio"]) == 3


async def test_a_permanent_failure_is_not_retried(gw: Gateway, fake: FakeVendors) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    fake.fail("meta", 400, body={"error": {"code": 131047, "message": "Re-engagement message"}})
    r = reply(Channel.WHATSAPP)
    await publish(gw, r)
    (status,) = statuses(await status_reader.wait_for(1)).values()
    assert status["state"] == "failed" and status["attempts"] == 1
    assert "131047" in status["error"]
    assert len(fake.requests) == 1


async def test_metas_rate_limit_codes_are_transient_and_secrets_never_leak(
    gw: Gateway, fake: FakeVendors
) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    fake.fail("meta", 400, body={"error": {"code": 130429, "message": "Rate limit hit"}})
    fake.fail("telegram", 500, times=3, body={"ok": False, "description": "bot123456:telegram-token-secret"})
    wa, tg = reply(Channel.WHATSAPP), reply(Channel.TELEGRAM)
    await publish(gw, wa, tg)
    found = statuses(await status_reader.wait_for(2, timeout_s=20))
    assert found[wa.reply_id]["state"] == "sent" and found[wa.reply_id]["attempts"] == 2
    assert found[tg.reply_id]["state"] == "dead_lettered"
    assert "telegram-token-secret" not in found[tg.reply_id]["error"]


async def test_exhausted_retries_dead_letter_the_original_reply(gw: Gateway, fake: FakeVendors) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    dead = await gw.reader(Topic.DEAD_LETTER)
    fake.fail("sendgrid", 500, times=3)
    r = reply(Channel.EMAIL)
    await publish(gw, r)
    (status,) = statuses(await status_reader.wait_for(1)).values()
    assert status["state"] == "dead_lettered" and status["attempts"] == 3
    assert "HTTP 500" in status["error"]
    (record,) = await dead.wait_for(1)
    assert record["type"] == "reply.requested" and record["payload"]["reply_id"] == r.reply_id
    assert dead.keys == [r.customer_id.encode()]
    async with gw.pool.acquire() as conn:
        state = await conn.fetchval("SELECT state FROM deliveries WHERE reply_id = $1", r.reply_id)
    assert state == "dead_lettered"


async def test_dead_letter_headers_name_the_reason(gw: Gateway, fake: FakeVendors) -> None:
    from aiokafka import AIOKafkaConsumer

    fake.fail("vonage", 503, times=3)
    r = reply(Channel.SMS, vendor=Vendor.VONAGE)
    await publish(gw, r)
    consumer = AIOKafkaConsumer(
        gw.settings.topic(Topic.DEAD_LETTER), bootstrap_servers=gw.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=20)
    finally:
        await consumer.stop()
    headers = dict(record.headers)
    assert b"gave up after 3 attempts" in headers["dlq.reason"] and b"HTTP 503" in headers["dlq.reason"]
    assert headers["dlq.source.topic"] == gw.settings.topic(Topic.REPLIES_OUTBOUND).encode()
    assert headers["dlq.group"] == b"channel-gateway-outbound"


async def test_poison_and_unroutable_replies(gw: Gateway, fake: FakeVendors) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    dead = await gw.reader(Topic.DEAD_LETTER)
    producer = gw.app[COMPONENTS].producer
    await producer.send_raw(Topic.REPLIES_OUTBOUND, "c-1", b'{"not": "an envelope"}')
    voice = reply(Channel.VOICE)
    unroutable = reply(Channel.SMS, vendor=Vendor.INTERNAL)
    await publish(gw, voice, unroutable)
    assert len(await dead.wait_for(2)) >= 2
    (status,) = statuses(await status_reader.wait_for(1)).values()
    assert status["reply_id"] == unroutable.reply_id and status["state"] == "failed"
    assert status["error"] == "no sender for vendor internal"
    assert fake.requests == []


async def test_per_customer_order_is_kept_while_the_head_retries(gw: Gateway, fake: FakeVendors) -> None:
    status_reader = await gw.reader(Topic.REPLIES_STATUS)
    fake.fail("twilio", 500, times=2)
    first = reply(Channel.SMS, "first", customer_id="c-order")
    second = reply(Channel.SMS, "second", customer_id="c-order")
    third = reply(Channel.SMS, "third", customer_id="c-order")
    await publish(gw, first, second, third)
    await status_reader.wait_for(3)
    assert [r.form["Body"][0] for r in fake.sent("twilio") if "Body" in r.form] == [
        "first",
        "second",
        "third",
    ]


async def test_two_instances_deliver_each_reply_once(
    kafka_bootstrap: str, make_database: MakeDatabase, topic_prefix: str, fake: FakeVendors
) -> None:
    db = await make_database()
    async with (
        outbound_gateway(kafka_bootstrap, db, topic_prefix, fake) as a,
        outbound_gateway(kafka_bootstrap, db, topic_prefix, fake) as b,
    ):
        status_reader = await a.reader(Topic.REPLIES_STATUS)
        replies = [reply(Channel.SMS, f"m{i}", customer_id=f"c-{i % 5}") for i in range(30)]
        await publish(a, *replies[:15])
        await publish(b, *replies[15:])
        found = statuses(await status_reader.wait_for(30, timeout_s=30))
        assert {s["state"] for s in found.values()} == {"sent"}
        await status_reader.settle(1.0)
        statuses(status_reader.seen)  # still one status per reply
    bodies = [r.form["Body"][0] for r in fake.sent("twilio")]
    assert sorted(bodies) == sorted(r.text for r in replies)
    for c in range(5):
        mine = [r.text for r in replies if r.customer_id == f"c-{c}"]
        assert [b for b in bodies if b in mine] == mine  # per-customer order across replicas


async def test_a_worker_killed_mid_call_loses_nothing(
    kafka_bootstrap: str, make_database: MakeDatabase, topic_prefix: str, fake: FakeVendors
) -> None:
    db = await make_database()
    # The lease is the timeout plus a margin: keep it short so the take-over is quick.
    fast = {"GATEWAY_DELIVERY_TIMEOUT_S": "1"}
    fake.stall("telegram", 5.0)
    async with outbound_gateway(kafka_bootstrap, db, topic_prefix, fake, **fast) as a:
        status_reader = await a.reader(Topic.REPLIES_STATUS)
        r = reply(Channel.TELEGRAM, "survives")
        await publish(a, r)
        await eventually(lambda: len(fake.requests) == 1, what="the first call to reach the vendor")
        outbound = a.app[COMPONENTS].outbound
        assert outbound is not None
        await outbound.workers.stop()  # killed while the vendor holds the call
        assert fake.sent("telegram") == []
        async with outbound_gateway(kafka_bootstrap, db, topic_prefix, fake, **fast):
            (status,) = statuses(await status_reader.wait_for(1, timeout_s=20)).values()
        assert status["state"] == "sent" and status["attempts"] == 2
        assert [x.json["text"] for x in fake.sent("telegram")] == ["survives"]

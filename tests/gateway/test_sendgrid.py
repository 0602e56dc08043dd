"""SendGrid Inbound Parse through the real broker, with the bodies shipped in the sendgrid package."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import sendgrid
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from omnirouter_shared.topics import Topic
from tests.gateway.harness import Gateway, running_gateway

pytestmark = pytest.mark.integration

SAMPLES = Path(sendgrid.__file__).parent / "helpers" / "inbound" / "sample_data"
#: What SendGrid's own helper (sendgrid/helpers/inbound/send.py) sends with these bodies.
SAMPLE_TYPE = "multipart/form-data; boundary=xYzZY"
USER, PASSWORD = "parse", "s3cret-parse-password"
PATH = "/webhooks/sendgrid"


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def with_headers(body: bytes, extra: str) -> bytes:
    """The parsed-mode sample with threading headers added to its ``headers`` field."""
    return body.replace(b"MIME-Version: 1.0\n", b"MIME-Version: 1.0\n" + extra.encode(), 1)


@pytest.fixture
async def gw(kafka_bootstrap: str, make_database, topic_prefix: str) -> AsyncIterator[Gateway]:  # type: ignore[no-untyped-def]
    db = await make_database()
    async with running_gateway(
        kafka_bootstrap, db, topic_prefix, SENDGRID_BASIC_AUTH=f"{USER}:{PASSWORD}"
    ) as gateway:
        yield gateway


async def post(gw: Gateway, body: bytes, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            gw.url + PATH, data=body, headers={"Content-Type": SAMPLE_TYPE, **(headers or {})}
        )
        await resp.read()
        return resp


async def test_parsed_mode_with_threading_headers_is_published_once(gw: Gateway) -> None:
    inbound = await gw.reader(Topic.INTERACTIONS_INBOUND)
    mid = f"<{uuid.uuid4().hex}@mail.example.com>"
    body = with_headers(
        sample("default_data.txt"),
        f"Message-ID: {mid}\nIn-Reply-To: <first@support.example.com>\n"
        "References: <root@support.example.com> <first@support.example.com>\n",
    )
    first = await post(gw, body, basic())
    assert first.status == 200, await first.text()
    again = await post(gw, body, basic())
    assert again.status == 200
    events = await inbound.settle(1.5)
    assert len(events) == 1, events
    p = events[0]["payload"]
    assert p["channel"] == "email" and p["vendor"] == "sendgrid"
    assert p["vendor_message_id"] == mid
    assert p["sender"] == {
        "kind": "email",
        "value": "test@example.com",
        "namespace": None,
        "display_name": "Example User",
        "verified": True,
    }
    assert p["recipient"]["value"] == "inbound@inbound.example.com"
    assert p["subject"] == "Testing non-raw"
    assert p["text"] == "Hello Twilio SendGrid!"
    assert p["thread"] == {
        "message_id": mid,
        "in_reply_to": "<first@support.example.com>",
        "references": ["<root@support.example.com>", "<first@support.example.com>"],
        "vendor_conversation_id": None,
    }
    assert p["vendor_fields"]["SPF"] == "pass"
    assert "text" not in p["vendor_fields"] and "html" not in p["vendor_fields"]
    assert inbound.keys[0] == b"email:test@example.com"


async def test_raw_mode_with_attachment_keeps_only_a_reference(gw: Gateway) -> None:
    inbound = await gw.reader(Topic.INTERACTIONS_INBOUND)
    body = sample("raw_data_with_attachments.txt")
    assert (await post(gw, body, basic())).status == 200
    # No Message-ID in SendGrid's sample: the mail's own bytes identify it across retries.
    assert (await post(gw, body, basic())).status == 200
    assert (await post(gw, sample("raw_data.txt"), basic())).status == 200
    events = await inbound.settle(1.5)
    assert len(events) == 2, events
    p = events[0]["payload"]
    assert p["subject"] == "Inbound Parse Test Raw Data with Attachment"
    assert p["text"] == "Hello Twilio SendGrid!"
    [attachment] = p["attachments"]
    mid = p["thread"]["message_id"]
    assert mid.startswith("<sha256-") and mid.endswith("@omnirouter.invalid>")
    assert attachment == {
        "url": f"email-attachment:{mid.strip('<>')}/0",
        "content_type": "image/jpeg",
        "filename": "SendGrid.jpg",
        "size": attachment["size"],
    }
    assert attachment["size"] > 1000
    assert "/9j/4AAQ" not in str(events)  # the JPEG's bytes never reach Kafka


async def test_basic_auth_refusals_publish_nothing(gw: Gateway) -> None:
    inbound = await gw.reader(Topic.INTERACTIONS_INBOUND)
    body = sample("default_data.txt")
    missing = await post(gw, body)
    assert missing.status == 401
    wrong = await post(gw, body, basic(password="guess"))
    assert wrong.status == 403
    assert (await wrong.json())["error"] == "bad_signature"
    assert PASSWORD not in await wrong.text()
    assert await inbound.settle(1.0) == []


async def test_unsupported_type_and_oversized_email(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    db = await make_database()
    async with (
        running_gateway(
            kafka_bootstrap,
            db,
            topic_prefix,
            SENDGRID_BASIC_AUTH=f"{USER}:{PASSWORD}",
            GATEWAY_MAX_EMAIL_BODY_BYTES="4096",
        ) as gw,
        aiohttp.ClientSession() as http,
    ):
        json_body = await http.post(gw.url + PATH, json={"from": "a@b.c"}, headers=basic())
        assert json_body.status == 415
        big = await http.post(
            gw.url + PATH,
            data=sample("raw_data_with_attachments.txt"),
            headers={"Content-Type": SAMPLE_TYPE, **basic()},
        )
        assert big.status == 413
        assert (await big.json())["error"] == "payload_too_large"


async def test_signed_webhooks_with_ecdsa(kafka_bootstrap: str, make_database, topic_prefix: str) -> None:  # type: ignore[no-untyped-def]
    private = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()

    def signed(body: bytes, when: int) -> dict[str, str]:
        sig = private.sign(str(when).encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(when),
        }

    db = await make_database()
    async with running_gateway(kafka_bootstrap, db, topic_prefix, SENDGRID_WEBHOOK_PUBLIC_KEY=public) as gw:
        inbound = await gw.reader(Topic.INTERACTIONS_INBOUND)
        body = sample("raw_data.txt")
        now = int(time.time())
        stale = await post(gw, body, signed(body, now - 3600))
        assert stale.status == 403 and (await stale.json())["error"] == "stale_timestamp"
        tampered = await post(gw, body.replace(b"Hello", b"Hallo"), signed(body, now))
        assert tampered.status == 403 and (await tampered.json())["error"] == "bad_signature"
        assert (await post(gw, body)).status == 401
        assert await inbound.settle(1.0) == []
        ok = await post(gw, body, signed(body, now))
        assert ok.status == 200
        [event] = await inbound.wait_for(1)
        assert event["payload"]["subject"] == "Inbound Parse Test Raw Data"


async def test_not_configured_is_503(gateway: Gateway) -> None:
    # dev.env sets no SendGrid credentials: refuse (the vendor retries), never accept unsigned mail.
    resp = await post(gateway, sample("raw_data.txt"))
    assert resp.status == 503
    assert (await resp.json())["error"] == "vendor_not_configured"

"""Lossless acknowledgement: 2xx only after the broker acknowledged; a paused broker is a fast 503 the
vendor retries, and the retry after recovery is stored exactly once. The gateway as a process: migrate,
ready, clean stop on SIGTERM, missing settings named."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from omnirouter_shared.devstack.broker import EmbeddedBroker, start_broker
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.kafka.admin import ensure_topics
from omnirouter_shared.topics import Topic
from tests.gateway.harness import dev_env, running_gateway

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own, so it can be paused without disturbing the others."""
    broker = start_broker(log_path=ROOT / ".data" / "test-broker-outage.log")
    try:
        yield broker
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(broker.process.pid, signal.SIGCONT)
        broker.stop()


def _sms(public_url: str, sid: str) -> tuple[dict[str, str], dict[str, str]]:
    params = {
        "MessageSid": sid,
        "From": "+14155550142",
        "To": "+18005550199",
        "Body": "hello",
        "NumMedia": "0",
    }
    sig = RequestValidator(dev_env()["TWILIO_AUTH_TOKEN"]).compute_signature(
        public_url + "/webhooks/twilio/messaging", params
    )
    return params, {"X-Twilio-Signature": sig}


async def test_a_paused_broker_is_a_fast_503_and_the_retry_is_stored_once(
    own_broker: EmbeddedBroker,
    make_database,  # type: ignore[no-untyped-def]
) -> None:
    prefix = f"o{uuid.uuid4().hex[:6]}."
    await ensure_topics(own_broker.bootstrap, prefix=prefix, partitions_override=1)
    async with running_gateway(own_broker.bootstrap, await make_database(), prefix) as gw:
        inbound = await gw.reader(Topic.INTERACTIONS_INBOUND)
        sid = "SM" + uuid.uuid4().hex
        params, headers = _sms(gw.settings.public_url, sid)
        async with aiohttp.ClientSession() as http:
            os.kill(own_broker.process.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                async with http.post(
                    gw.url + "/webhooks/twilio/messaging", data=params, headers=headers
                ) as r:
                    elapsed = time.monotonic() - started
                    assert r.status == 503, await r.text()
                    assert r.headers["Retry-After"]
                    assert (await r.json())["error"] == "unavailable"
                # Inside every vendor's time-out (Meta: 5 s).
                assert elapsed < 4.5, elapsed
            finally:
                os.kill(own_broker.process.pid, signal.SIGCONT)
            # The vendor retries; the claim was released, so the retry is stored.
            for _ in range(50):
                async with http.post(
                    gw.url + "/webhooks/twilio/messaging", data=params, headers=headers
                ) as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.2)
            assert r.status == 200
            async with http.post(gw.url + "/webhooks/twilio/messaging", data=params, headers=headers) as r:
                assert r.status == 200
        events = await inbound.settle(2.0)
        # The publish that timed out may still have reached the log when the broker woke: then it has
        # the same event id as the retry, which every consumer drops. No third copy, ever.
        ids = {e["event_id"] for e in events}
        assert len(ids) == 1 and 1 <= len(events) <= 2, events


async def test_the_gateway_process_migrates_serves_and_stops_on_sigterm(
    kafka_bootstrap: str,
    make_database,  # type: ignore[no-untyped-def]
    topic_prefix: str,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        **dev_env(),
        "DATABASE_URL": await make_database(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "OMNI_TOPIC_PREFIX": topic_prefix,
        "HTTP_PORT": str(port),
        "LOG_FORMAT": "text",
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "omnirouter_gateway", "migrate", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await migrate.communicate()
    assert migrate.returncode == 0, out.decode()[-2000:]
    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "omnirouter_gateway", "serve", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(150):
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                        if r.status == 200:
                            break
                assert serve.returncode is None
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("gateway never became ready")
        serve.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(serve.communicate(), timeout=20)
        assert serve.returncode == 0, out.decode()[-2000:]
        assert b"stopped" in out
    finally:
        if serve.returncode is None:
            serve.kill()
            await serve.wait()


async def test_bad_settings_are_named_and_exit_2() -> None:
    env = {**os.environ, "OMNI_PUBLIC_URL": "not a url", "HTTP_PORT": "99999"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "omnirouter_gateway", "serve", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 2
    assert b"OMNI_PUBLIC_URL" in out and b"HTTP_PORT" in out

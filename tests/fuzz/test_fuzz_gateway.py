"""channel-gateway's HTTP API fuzzed from services/channel-gateway/openapi.yaml. Nothing the fuzzer sends
is signed, so every webhook must be refused with a 4xx: never accepted, never a 5xx, except the
documented 503 vendor_not_configured of a vendor whose secret is not set (SendGrid, on purpose, here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
import requests
from schemathesis import APIOperation, Case, GenerationMode

from tests.fuzz.runner import ROOT, Identity, fuzz
from tests.gateway.harness import running_gateway

pytestmark = pytest.mark.integration

DOCUMENT = ROOT / "services" / "channel-gateway" / "openapi.yaml"
POSITIVE = (GenerationMode.POSITIVE,)


def vendor_not_configured(response: requests.Response) -> bool:
    if response.status_code != 503:
        return False
    try:
        return bool(response.json().get("error") == "vendor_not_configured")
    except ValueError:
        return False


def refused(_: Case, response: requests.Response) -> str | None:  # type: ignore[type-arg]
    if response.status_code < 400:
        return f"an unsigned webhook was accepted ({response.status_code})"
    if response.status_code >= 500 and not vendor_not_configured(response):
        return f"an unsigned webhook got a {response.status_code}, not a 4xx"
    return None


def identities(op: APIOperation) -> list[Identity]:  # type: ignore[type-arg]
    if op.path.startswith("/webhooks/") and op.method.upper() == "POST":
        return [
            Identity("unsigned", expect=refused, server_error_ok=vendor_not_configured),
            Identity(
                "forged-signatures",
                {
                    "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl",
                    "X-Hub-Signature-256": "sha256=" + "0" * 64,
                    "X-Telegram-Bot-Api-Secret-Token": "not-the-secret",
                    "Authorization": "Bearer not.a.jwt",
                    "webhook-id": "msg_1",
                    "webhook-timestamp": str(int(time.time())),
                    "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl",
                },
                expect=refused,
                server_error_ok=vendor_not_configured,
                max_examples=8,
                modes=POSITIVE,
            ),
        ]
    if op.path.startswith("/webchat/v1/"):
        return [
            Identity("visitor", server_error_ok=vendor_not_configured),
            Identity("bad-visitor-token", {"Authorization": "Bearer nope"}, max_examples=5, modes=POSITIVE),
        ]
    return [Identity("anonymous", max_examples=5)]


async def test_gateway_api_fuzzed_from_its_openapi_document(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    async with running_gateway(kafka_bootstrap, await make_database(), topic_prefix) as gateway:
        started = time.monotonic()
        report = await asyncio.to_thread(fuzz, DOCUMENT, gateway.url, identities, max_examples=20)
        print(
            f"gateway: {report.requests} requests in {time.monotonic() - started:.1f}s"
            f" (calls {report.call_s:.1f}s, checks {report.check_s:.1f}s) {report.by_status}"
        )
        assert not report.findings, report.summary()
        async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/readyz") as r:
            assert r.status == 200, await r.text()

"""routing's HTTP API fuzzed from services/routing/openapi.yaml, as admin, as a system token, with no
token and with a wrong one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from schemathesis import APIOperation

from tests.fuzz.runner import ROOT, Identity, fuzz, never_2xx
from tests.routing.integration.harness import (
    ADMIN,
    API_TOKEN,
    make_settings,
    prepare_database,
    start_routing,
    write_config,
)

pytestmark = pytest.mark.integration

DOCUMENT = ROOT / "services" / "routing" / "openapi.yaml"


def identities(op: APIOperation) -> list[Identity]:
    if not op.path.startswith("/v1/"):
        return [Identity("anonymous", max_examples=5)]
    return [
        Identity("admin", {"Authorization": f"Bearer {ADMIN}"}),
        Identity("api-token", {"Authorization": f"Bearer {API_TOKEN}"}, max_examples=10),
        Identity("no-token", {"Authorization": None}, expect=never_2xx, max_examples=5),
        Identity("wrong-token", {"Authorization": "Bearer not-a-token"}, expect=never_2xx, max_examples=5),
    ]


async def test_routing_api_fuzzed_from_its_openapi_document(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    db = await make_database()
    await prepare_database(db)
    settings = make_settings(
        kafka_bootstrap, db, topic_prefix, write_config(tmp_path / "routing.yaml"), rate_limit_per_s=0
    )
    routing = await start_routing(settings)
    try:
        started = time.monotonic()
        report = await asyncio.to_thread(fuzz, DOCUMENT, routing.url, identities, max_examples=25)
        print(
            f"routing: {report.requests} requests in {time.monotonic() - started:.1f}s (calls {report.call_s:.1f}s, checks {report.check_s:.1f}s) {report.by_status}"
        )
        assert not report.findings, report.summary()
        async with aiohttp.ClientSession() as http:
            # Found by the fuzzing: a body that is not UTF-8 was a 500 (UnicodeDecodeError).
            async with http.post(
                f"{routing.url}/v1/config/validate",
                data=b"\xbc\xff",
                headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
            ) as r:
                assert r.status == 400 and (await r.json())["error"] == "bad_request"
            async with http.get(f"{routing.url}/readyz") as r:
                assert r.status == 200, await r.text()
    finally:
        await routing.stop()

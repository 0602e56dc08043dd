"""identity-resolution's HTTP API fuzzed from services/identity-resolution/openapi.yaml, with the
consumers running: as admin (on random ids and on a real customer), as a system token, with no token and
with a wrong one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from schemathesis import APIOperation, GenerationMode

from omnirouter_identity.app import MIGRATIONS, SCHEMA, build_app
from omnirouter_shared.db import migrate
from tests.fuzz.runner import ROOT, Identity, fuzz, never_2xx
from tests.identity.test_service import settings

pytestmark = pytest.mark.integration

DOCUMENT = ROOT / "services" / "identity-resolution" / "openapi.yaml"
ADMIN = {"Authorization": "Bearer admin-secret"}
CRM = {"Authorization": "Bearer crm-token"}
BAD = {"Authorization": "Bearer nope"}
POSITIVE = (GenerationMode.POSITIVE,)


def identities_for(customer_id: str):  # type: ignore[no-untyped-def]
    def identities(op: APIOperation) -> list[Identity]:  # type: ignore[type-arg]
        if not op.path.startswith("/v1/"):
            return [Identity("anonymous", max_examples=3)]
        return [
            Identity("admin", ADMIN),
            # Not erased before the other operations had their turn on it.
            *(
                [Identity("admin-known-customer", ADMIN, {"id": customer_id}, max_examples=8)]
                if op.method.upper() != "DELETE"
                else []
            ),
            Identity("api-token", CRM, max_examples=5, modes=POSITIVE),
            Identity("no-token", {"Authorization": None}, expect=never_2xx, max_examples=3, modes=POSITIVE),
            Identity("wrong-token", BAD, expect=never_2xx, max_examples=2, modes=POSITIVE),
        ]

    return identities


async def test_identity_api_fuzzed_from_its_openapi_document(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    identity_url = await make_database()
    await migrate(identity_url, SCHEMA, MIGRATIONS)
    # Thousands of requests from one address: the rate limit (tested in tests/limits) is off here.
    unlimited = settings(kafka_bootstrap, topic_prefix, identity_url).model_copy(
        update={"rate_limit_per_s": 0}
    )
    server = TestServer(await build_app(unlimited))
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as http:
            body = {
                "entry_id": "fuzz-seed",
                "source": "crm",
                "summary": "seed",
                "identifier": {"kind": "email", "value": "ada@lovelace.io"},
            }
            async with http.post(f"{base}/v1/interactions", json=body, headers=CRM) as r:
                assert r.status in (200, 201), await r.text()
                customer_id = (await r.json())["customer_id"]
        started = time.monotonic()
        report = await asyncio.to_thread(fuzz, DOCUMENT, base, identities_for(customer_id), max_examples=20)
        print(
            f"identity: {report.requests} requests in {time.monotonic() - started:.1f}s"
            f" (calls {report.call_s:.1f}s, checks {report.check_s:.1f}s) {report.by_status}"
        )
        assert not report.findings, report.summary()
        async with aiohttp.ClientSession() as http:
            # Found by the fuzzing: a suggestion id beyond bigint was a 500 (asyncpg DataError); a
            # non-ASCII digit ("²" passes str.isdigit) was one too, for ids and limits.
            for path in ("/v1/suggestions/99999999999999999999/accept", "/v1/suggestions/%C2%B2/dismiss"):
                async with http.post(f"{base}{path}", headers=ADMIN) as r:
                    assert r.status == 404, await r.text()
            async with http.get(f"{base}/v1/suggestions?limit=%C2%B2", headers=ADMIN) as r:
                assert r.status == 400 and (await r.json())["error"] == "invalid_limit"
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200, await r.text()
    finally:
        await server.close()

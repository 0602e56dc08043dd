"""agent-presence's HTTP API fuzzed from services/agent-presence/openapi.yaml: admin operations as admin
(on random ids and on a real agent), agents' operations as that agent (its own id) and with its token on
other ids, and everything with no token and with a wrong one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from schemathesis import APIOperation, GenerationMode

from tests.fuzz.runner import ROOT, Identity, fuzz, never_2xx
from tests.presence.harness import ADMIN, create_agent, make_settings, running_presence

pytestmark = pytest.mark.integration

DOCUMENT = ROOT / "services" / "agent-presence" / "openapi.yaml"
POSITIVE = (GenerationMode.POSITIVE,)


def _bearer(token: str) -> dict[str, str | None]:
    return {"Authorization": f"Bearer {token}"}


def identities_for(agent_id: str, agent_token: str, target_id: str):  # type: ignore[no-untyped-def]
    admin = _bearer(ADMIN)
    agent = _bearer(agent_token)

    def identities(op: APIOperation) -> list[Identity]:  # type: ignore[type-arg]
        if not op.path.startswith("/v1/"):
            return [Identity("anonymous", max_examples=2, modes=POSITIVE)]
        anonymous = [
            Identity("no-token", {"Authorization": None}, expect=never_2xx, max_examples=2, modes=POSITIVE),
            Identity("wrong-token", _bearer("nope"), expect=never_2xx, max_examples=2, modes=POSITIVE),
        ]
        if "adminToken" in str(op.definition.raw.get("security")):
            return [
                Identity("admin", admin),
                Identity("admin-real-agent", admin, {"id": target_id}, max_examples=8),
                Identity("agent-token", agent, expect=never_2xx, max_examples=3, modes=POSITIVE),
                *anonymous,
            ]
        return [
            Identity("agent-own", agent, {"id": agent_id}),
            Identity("agent-other-id", agent, expect=never_2xx, max_examples=3, modes=POSITIVE),
            Identity("admin", admin, max_examples=3, modes=POSITIVE),
            *anonymous,
        ]

    return identities


async def test_presence_api_fuzzed_from_its_openapi_document(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    settings = make_settings(kafka_bootstrap, await make_database(), topic_prefix, rate_limit_per_s=0)
    async with running_presence(settings) as presence:
        async with aiohttp.ClientSession() as http:
            agent = await create_agent(http, presence)
            target = await create_agent(http, presence)
        started = time.monotonic()
        report = await asyncio.to_thread(
            fuzz,
            DOCUMENT,
            presence.url,
            identities_for(agent["id"], agent["token"], target["id"]),
            max_examples=15,
        )
        print(
            f"presence: {report.requests} requests in {time.monotonic() - started:.1f}s"
            f" (calls {report.call_s:.1f}s, checks {report.check_s:.1f}s) {report.by_status}"
        )
        assert not report.findings, report.summary()
        async with aiohttp.ClientSession() as http, http.get(f"{presence.url}/readyz") as r:
            assert r.status == 200, await r.text()

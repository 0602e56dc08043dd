"""Outbound webhooks: signed the Standard Webhooks way (verified with the `standardwebhooks` package),
retried with backoff, and kept in a durable outbox across a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from omnirouter_presence.domain.roster import new_webhook_secret
from omnirouter_shared.devstack.ports import free_port
from tests.presence.harness import (
    ADMIN,
    create_agent,
    make_settings,
    offered,
    routing_stub,
    running_presence,
    task_view,
)

pytestmark = pytest.mark.integration


class Receiver:
    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.attempts: list[tuple[dict[str, str], bytes]] = []
        self.delivered: list[dict[str, Any]] = []
        self.secret: str | None = None
        self.got = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("webhook-")}
        self.attempts.append((headers, body))
        if len(self.attempts) <= self.fail_first:
            return web.Response(status=503)
        assert self.secret is not None
        self.delivered.append(Webhook(self.secret).verify(body, headers))
        self.got.set()
        return web.Response(status=204)


async def test_webhooks_are_signed_retried_and_survive_a_restart(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver(fail_first=2)
    app = web.Application()
    app.router.add_post("/hooks/omnirouter", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    db = await make_database()
    # A long backoff, so that the retry can only happen after the restart below.
    slow = make_settings(
        kafka_bootstrap, db, topic_prefix, webhook_backoff_base_s=30, webhook_backoff_max_s=30
    )
    try:
        async with aiohttp.ClientSession() as http:
            async with running_presence(slow) as presence, routing_stub(slow) as routing:
                created = await create_agent(
                    http, presence, webhook_url=f"http://127.0.0.1:{port}/hooks/omnirouter"
                )
                receiver.secret = created["webhook_secret"]
                assert receiver.secret.startswith("whsec_")
                offer = offered(created["id"], task_view())
                await routing(offer, created["id"])
                for _ in range(100):
                    if receiver.attempts:
                        break
                    await asyncio.sleep(0.1)
                assert len(receiver.attempts) == 1 and not receiver.delivered
            # Restarted (a new process would do the same): the outbox still holds the message.
            fast = slow.model_copy(update={"webhook_backoff_base_s": 0.2, "webhook_backoff_max_s": 0.5})
            async with running_presence(fast, migrated=True) as presence:
                await make_due(db)
                # Attempt 2 fails too; attempt 3 follows after the (now short) backoff.
                await asyncio.wait_for(receiver.got.wait(), 15)
                assert len(receiver.attempts) == 3
                message = receiver.delivered[0]
                assert message["type"] == "offer" and message["offer_id"] == offer.offer_id
                assert message["agent_id"] == created["id"] and message["task"]["id"] == offer.task.id
                ids = {headers["webhook-id"] for headers, _ in receiver.attempts}
                assert len(ids) == 1  # one message id across retries: the receiver can deduplicate
                assert receiver.attempts[2][0]["webhook-signature"].startswith("v1,")

                # A forged or altered message does not verify.
                body = orjson.loads(receiver.attempts[1][1])
                body["offer_id"] = "forged"
                with pytest.raises(Exception, match="(?i)signature"):
                    Webhook(receiver.secret).verify(orjson.dumps(body), receiver.attempts[1][0])

                async with http.post(
                    f"{presence.url}/v1/agents/{created['id']}/webhook-secret",
                    headers={"Authorization": f"Bearer {ADMIN}"},
                ) as r:
                    assert r.status == 200
                    assert (await r.json())["webhook_secret"] != receiver.secret
    finally:
        await runner.cleanup()


async def make_due(database_url: str) -> None:
    """As if the pending delivery's backoff had run out while presence was down."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE presence.webhook_outbox SET next_attempt_at = now() WHERE state = 'pending'"
        )
    finally:
        await conn.close()


async def _gone(_: web.Request) -> web.Response:
    return web.Response(status=410)


async def test_the_global_webhook_serves_agents_without_their_own_and_a_4xx_is_final(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver(fail_first=0)
    receiver.secret = new_webhook_secret()
    app = web.Application()
    app.router.add_post("/global", receiver.handle)
    app.router.add_post("/gone", _gone)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    db = await make_database()
    settings = make_settings(
        kafka_bootstrap,
        db,
        topic_prefix,
        webhook_url=f"http://127.0.0.1:{port}/global",
        webhook_secret=receiver.secret,
    )
    try:
        async with (
            running_presence(settings) as presence,
            routing_stub(settings) as routing,
            aiohttp.ClientSession() as http,
        ):
            plain = await create_agent(http, presence)
            gone = await create_agent(http, presence, webhook_url=f"http://127.0.0.1:{port}/gone")
            await routing(offered(plain["id"], task_view()), plain["id"])
            await routing(offered(gone["id"], task_view()), gone["id"])
            await asyncio.wait_for(receiver.got.wait(), 15)
            assert receiver.delivered[0]["agent_id"] == plain["id"]
            conn = await asyncpg.connect(db)
            try:
                for _ in range(100):
                    row = await conn.fetchrow(
                        "SELECT state, attempts, last_error FROM presence.webhook_outbox WHERE agent_id = $1",
                        gone["id"],
                    )
                    if row is not None and row["state"] == "dead":
                        break
                    await asyncio.sleep(0.1)
            finally:
                await conn.close()
            assert row is not None and (row["state"], row["attempts"], row["last_error"]) == (
                "dead",
                1,
                "HTTP 410",
            )
    finally:
        await runner.cleanup()

"""The agent desktop and the wallboard in headless Chromium (Debian's package, driven by Playwright):
sign in, go available, receive an offer with the customer's history, accept, reply, complete; the
wallboard shows queues and agents and updates live. Screenshots go to tests/artifacts/presence/."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.identity import TimelineItem
from omnirouter_shared.contracts.routing import TaskAssigned
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.topics import Topic
from tests.browser import BROWSER_MARKS, chromium
from tests.presence.harness import (
    ADMIN,
    create_agent,
    make_settings,
    offered,
    routing_stub,
    running_presence,
    task_view,
    watch,
)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "presence"

pytestmark = BROWSER_MARKS


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium(ARTIFACTS) as launched:
        yield launched


class RoutingStatsStub:
    """Routing's GET /v1/stats, answering only with the admin token."""

    def __init__(self) -> None:
        self.waiting = 2

    async def stats(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {ADMIN}":
            return web.json_response({"error": "forbidden", "reason": "admin token"}, status=403)
        queue = {
            "queue": "billing",
            "waiting": self.waiting,
            "offered": 1,
            "assigned": 0,
            "oldest_wait": 75.0,
            "service_level": 0.8,
            "service_level_threshold": 30,
            "answered": 8,
            "abandoned": 2,
        }
        return web.json_response({"queues": [queue], "agents": {}, "bots": {}})


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def test_agent_desktop_and_wallboard(
    kafka_bootstrap: str, make_database, topic_prefix: str, browser: Any
) -> None:  # type: ignore[no-untyped-def]
    stub = RoutingStatsStub()
    stub_app = web.Application()
    stub_app.router.add_get("/v1/stats", stub.stats)
    stub_port = free_port()
    stub_runner = await _serve(stub_app, stub_port)
    settings = make_settings(
        kafka_bootstrap, await make_database(), topic_prefix, routing_url=f"http://127.0.0.1:{stub_port}"
    )
    try:
        async with (
            watch(kafka_bootstrap, topic_prefix, Topic.ROUTING_INBOX) as inbox,
            watch(kafka_bootstrap, topic_prefix, Topic.REPLIES_OUTBOUND) as replies,
            running_presence(settings) as presence,
            routing_stub(settings) as routing,
            aiohttp.ClientSession() as http,
        ):
            created = await create_agent(
                http, presence, name="Dana Desk", id=f"dana-{uuid.uuid4().hex[:6]}", capacity={"sms": 1}
            )
            agent_id = created["id"]
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            await page.goto(f"{presence.url}/desk/")
            await page.fill("#agent-id", agent_id)
            await page.fill("#token", "wrong")
            await page.click("#signin-button")
            await page.wait_for_selector("#signin-error:has-text('does not grant access')")
            await page.fill("#token", created["token"])
            await page.click("#signin-button")
            await page.wait_for_selector("#state[data-state='offline']")
            await page.click("#go-available")
            await page.wait_for_selector("#state[data-state='available']")
            await inbox.wait_for("agent.status_changed", lambda p: p["status"] == "available")

            history = (
                TimelineItem(
                    entry_id="e1",
                    occurred_at=datetime.now(UTC) - timedelta(days=2),
                    channel=Channel.EMAIL,
                    direction="outbound",
                    kind="message",
                    summary="We promised a refund of 20 EUR by Friday",
                    source="agent:bob",
                ),
            )
            task = task_view(text="Where is my refund?").model_copy(update={"history": history})
            offer = offered(agent_id, task)
            await routing(offer, agent_id)
            card = page.locator(f".offer[data-offer-id='{offer.offer_id}']")
            await card.wait_for()
            await card.locator("text=We promised a refund of 20 EUR by Friday").wait_for()
            await card.locator("text=Where is my refund?").wait_for()
            await page.screenshot(path=str(ARTIFACTS / "desk-1-offer.png"), full_page=True)

            await card.locator("button.accept").click()
            await inbox.wait_for("offer.accepted", lambda p: p["offer_id"] == offer.offer_id)
            await routing(TaskAssigned(task_id=task.id, agent_id=agent_id, task=task), agent_id)
            conversation = page.locator(f".task[data-task-id='{task.id}']")
            await conversation.wait_for()
            assert await page.locator(".offer").count() == 0
            await page.wait_for_selector("#state[data-state='busy']")

            await conversation.locator("textarea.reply-text").fill("Your refund left today.")
            await conversation.locator("button.send-reply").click()
            await conversation.locator(".msg.out:has-text('Your refund left today.')").wait_for()
            key, reply = await replies.wait_for("reply.requested")
            assert key == task.customer_id and reply.payload["text"] == "Your refund left today."
            await page.reload()  # the conversation, replies included, comes back from the server
            await conversation.locator(".msg.out:has-text('Your refund left today.')").wait_for()
            assert await conversation.locator(".msg.out").count() == 1
            await page.screenshot(path=str(ARTIFACTS / "desk-2-conversation.png"), full_page=True)

            await conversation.locator("button.complete").click()
            await inbox.wait_for("task.completed", lambda p: p["task_id"] == task.id)
            await page.wait_for_selector("#state[data-state='wrapup']")
            await conversation.locator("button.wrapup-done").click()
            await inbox.wait_for("wrapup.done", lambda p: p["task_id"] == task.id)
            await page.wait_for_selector("#state[data-state='available']")
            assert await page.locator(".task").count() == 0
            await page.screenshot(path=str(ARTIFACTS / "desk-3-done.png"), full_page=True)

            board = await browser.new_page(viewport={"width": 1280, "height": 860})
            await board.goto(f"{presence.url}/wallboard/")
            await board.fill("#admin-token", ADMIN)
            await board.click("#signin button[type=submit]")
            row = board.locator("#queues tr[data-queue='billing']")
            await row.locator("td.waiting:text-is('2')").wait_for()
            assert await row.locator("td.oldest").inner_text() == "1 min 15 s"
            assert (await row.locator("td.service-level").inner_text()).startswith("80 %")
            agent_row = board.locator(f"#agents tr[data-agent='{agent_id}']")
            await agent_row.locator(".pill.available").wait_for()
            await board.locator("[data-tile='agents-available'] .big:text-is('1')").wait_for()
            assert await board.locator("[data-tile='service-level'] .big").inner_text() == "80 %"
            await board.screenshot(path=str(ARTIFACTS / "wallboard-1.png"), full_page=True)

            # Live: a new contact waits in routing, and the agent goes on a break.
            stub.waiting = 3
            await page.select_option("#away-reason", "lunch")
            await page.click("#go-away")
            await row.locator("td.waiting:text-is('3')").wait_for(timeout=10_000)
            await agent_row.locator(".pill.away:has-text('lunch')").wait_for(timeout=10_000)
            await board.screenshot(path=str(ARTIFACTS / "wallboard-2-live.png"), full_page=True)
    finally:
        await stub_runner.cleanup()

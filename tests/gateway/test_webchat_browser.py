"""The web chat widget page in headless Chromium (Debian's package, driven by Playwright): it opens a
session, sends a message that lands on Kafka, and shows an agent's reply pushed over its WebSocket.
The screenshot goes to tests/artifacts/gateway/."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from omnirouter_gateway.outbound.webchat import WebchatSender
from omnirouter_shared.contracts.common import Address, AddressKind, Channel
from omnirouter_shared.contracts.replies import ReplyRequested
from omnirouter_shared.topics import Topic
from tests.browser import BROWSER_MARKS, chromium
from tests.gateway.harness import Gateway

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "gateway"

pytestmark = BROWSER_MARKS


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium(ARTIFACTS) as launched:
        yield launched


async def test_widget_sends_and_shows_a_reply(gateway: Gateway, browser: Any) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    page = await browser.new_page()
    await page.goto(gateway.url + "/webchat/widget")
    # A locator, not wait_for_function: the widget's CSP forbids eval, which a polled string predicate
    # needs once the first check fails.
    await page.locator("#status", has_text=re.compile(r"^connected$")).wait_for()
    await page.fill("#t", "Is my parcel lost?")
    await page.press("#t", "Enter")
    [event] = await inbound.wait_for(1)
    visitor = event["payload"]["sender"]["value"]
    assert event["payload"]["text"] == "Is my parcel lost?"
    reply = ReplyRequested(
        reply_id="r-" + uuid.uuid4().hex,
        customer_id="c1",
        author="agent:alice",
        channel=Channel.WEBCHAT,
        to=Address(kind=AddressKind.WEBCHAT, value=visitor),
        text="No, it arrives tomorrow.",
    )
    async with aiohttp.ClientSession() as http:
        await WebchatSender(gateway.settings, gateway.pool).send(reply, http)
    await page.wait_for_selector("text=No, it arrives tomorrow.")
    await page.screenshot(path=str(ARTIFACTS / "webchat-widget.png"))

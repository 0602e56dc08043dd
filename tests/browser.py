"""Debian's headless Chromium driven by Playwright (its own browser download does not work here)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Without the background-networking flags Chromium keeps calling Google's hosts, which this
#: machine's closed network refuses many at a time.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

BROWSER_MARKS = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make browser-deps)"
    ),
]


@contextlib.asynccontextmanager
async def chromium(artifacts: Path) -> AsyncIterator[Any]:
    """A launched browser; ``artifacts`` (for screenshots) exists once it is yielded."""
    from playwright.async_api import async_playwright

    artifacts.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()

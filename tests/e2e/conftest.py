"""Headless Chromium from Debian, driven by Playwright (no browser download)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(autouse=True)
def fresh_aioice_mdns() -> Iterator[None]:
    """aioice keeps one mDNS resolver per thread, guarded by an ``asyncio.Lock`` that stays
    bound to (and possibly held in) the event loop of the first test that resolved a
    ``.local`` candidate; Chromium offers only those, and every test has its own loop."""
    import aioice.ice

    aioice.ice._mdns.__dict__.clear()
    yield
    aioice.ice._mdns.__dict__.clear()

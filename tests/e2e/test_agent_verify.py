"""The agent page checks the ledger itself, in a real Chromium (ARCHITECTURE.md decision 10):
it keeps the newest checkpoint it verified, proves on every visit that the log still extends
it, and when the log was rewritten shows a plain warning and reports it to auditors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from live.audit.log import MerkleLedger
from tests.helpers import reserved_port
from tests.support.server import RunningServer, running_server

pytestmark = pytest.mark.e2e

STATUS = '[data-testid="ledger-status"]'
BANNER = '[data-testid="ledger-failed"]'


async def grow(server: RunningServer, entries: int) -> int:
    """Append entries about another agent's calls; returns the tree size."""
    ledger = server.state.node.ledger
    assert isinstance(ledger, MerkleLedger)
    for n in range(entries):
        await ledger.append("pci.paused", actor="system", at=time.time(), call_id=f"CA-{n}", agent_id="agent-2")
    size, _ = await ledger.head()
    return size


async def visit(context: BrowserContext, server: RunningServer, lang: str = "en") -> Page:
    page = await context.new_page()
    await page.goto(f"{server.base_url}/auth/link?token={server.tokens['agent']}")
    assert page.url.endswith("/agent/")
    if lang != "en":
        await page.locator(f'[data-testid="lang-switch"] button[data-lang="{lang}"]').click()
    return page


async def kept_size(page: Page) -> int:
    kept = await page.evaluate("() => localStorage.getItem('live.checkpoint.agent')")
    return int(json.loads(kept)["size"])


def wipe_ledger(data: Path, *, key: bool) -> None:
    """What an operator who rewrites the log does: start it afresh (with the same key or not)."""
    for file in data.glob("ledger.sqlite3*"):
        file.unlink()
    if key:
        (data / "ledger-signing.pem").unlink()


@pytest.fixture
def port() -> Iterator[int]:
    """A port held for the test: the page's origin stays the same across server restarts."""
    with reserved_port() as held:
        yield held.getsockname()[1]


async def test_a_rewritten_log_is_shown_and_reported(tmp_path: Path, browser: Browser, port: int) -> None:
    data = tmp_path / "data"
    context = await browser.new_context()
    try:
        async with running_server(data, port=port) as server:
            await grow(server, 3)
            page = await visit(context, server)
            await expect(page.locator(STATUS)).to_have_attribute("data-state", "first", timeout=10_000)
            first = await kept_size(page)
            await page.close()
            # The log grows: the next visit proves the new tree extends the kept one.
            size = await grow(server, 5)
            page = await visit(context, server)
            await expect(page.locator(STATUS)).to_have_attribute("data-state", "ok", timeout=10_000)
            await expect(page.locator(BANNER)).to_be_hidden()
            assert first < size <= await kept_size(page)
            kept = await kept_size(page)
            await page.close()

        # The operator rewrites history with the same signing key, and lets it grow past
        # what the agent saw: every checkpoint is validly signed, only the proof can tell.
        wipe_ledger(data, key=False)
        async with running_server(data, port=port) as server:
            served = await grow(server, kept + 4)
            page = await visit(context, server)
            banner = page.locator(BANNER)
            await expect(banner).to_be_visible(timeout=10_000)
            await expect(banner).to_have_attribute("data-problem", "inconsistent")
            await expect(banner).to_contain_text("the monitoring log has been changed")
            await expect(banner).to_contain_text(f"({kept} entries) have been changed or removed")
            await expect(banner).to_contain_text("The auditors have been told")
            await expect(page.locator(STATUS)).to_have_attribute("data-state", "failed")
            assert await kept_size(page) == kept  # the rewritten log never replaces it
            [report] = await server.state.node.ledger.entries(kind="checkpoint.inconsistent")
            assert report.public_fields["agent_id"] == "agent"
            assert report.public_fields["problem"] == "inconsistent"
            assert report.public_fields["kept_size"] == kept
            assert report.public_fields["served_size"] >= served
            await page.close()

            # The next visit still shows it, in German too, without reporting it twice.
            page = await visit(context, server, lang="de")
            banner = page.locator(BANNER)
            await expect(banner).to_be_visible(timeout=10_000)
            await expect(banner).to_contain_text("Das Mithör-Protokoll wurde verändert")
            await expect(banner).to_contain_text("wurden geändert oder entfernt")
            await page.close()
            assert len(await server.state.node.ledger.entries(kind="checkpoint.inconsistent")) == 1
    finally:
        await context.close()


async def test_a_new_signing_key_is_a_failure(tmp_path: Path, browser: Browser, port: int) -> None:
    data = tmp_path / "data"
    context = await browser.new_context()
    try:
        async with running_server(data, port=port) as server:
            page = await visit(context, server)
            await expect(page.locator(STATUS)).to_have_attribute("data-state", "first", timeout=10_000)
            await page.close()
        wipe_ledger(data, key=True)
        async with running_server(data, port=port) as server:
            await grow(server, 10)
            page = await visit(context, server)
            banner = page.locator(BANNER)
            await expect(banner).to_be_visible(timeout=10_000)
            await expect(banner).to_have_attribute("data-problem", "key_changed")
            await expect(banner).to_contain_text("signed with a different key")
            [report] = await server.state.node.ledger.entries(kind="checkpoint.inconsistent")
            assert report.public_fields["problem"] == "key_changed"
            await page.close()
    finally:
        await context.close()

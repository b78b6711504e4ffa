"""A supervisor in a real Chromium hears a call that arrives as a jambonz ``listen`` fork."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.test_console import heard_both_legs
from tests.support.l16 import ForkSender, interleave, pcm
from tests.support.server import running_server

pytestmark = pytest.mark.e2e


async def test_supervisor_hears_a_jambonz_fork_in_chromium(tmp_path: Path, browser: Browser) -> None:
    async with running_server(tmp_path) as server:
        first = {"callSid": "jz-e2e", "sampleRate": 16000, "mixType": "stereo", "agentId": "agent-77",
                 "consent": "granted", "direction": "inbound"}
        audio = interleave(pcm(300, 2.0, 0.06, 16000), pcm(440, 2.0, 0.6, 16000))  # caller quiet, agent loud
        sender = ForkSender(f"{server.ws_url}/ingest/fork/jambonz", first, audio, 1280, protocols=("audio.jambonz.org",))
        await sender.start()
        try:
            page = await browser.new_page()
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['sup']}")
            row = page.locator('[data-testid="call-row"][data-call-id="jz-e2e"]')
            await row.wait_for(timeout=10_000)
            assert "agent-77" in await row.inner_text()
            await row.locator('[data-testid="listen-button"]').click()
            await page.locator('[data-testid="purpose-select"]').select_option("quality")
            await page.locator('[data-testid="purpose-confirm"]').click()
            for leg in ("agent", "caller"):
                await expect(page.locator(f'[data-testid="leg-{leg}"]')).to_have_attribute(
                    "data-available", "true", timeout=15_000
                )

            legs = await heard_both_legs(page)
            for leg in ("agent", "caller"):
                assert legs.get(leg) and legs[leg]["packets"] > 100 and legs[leg]["energy"] > 0, legs
                assert legs[leg]["codec"] == "audio/PCMU", legs
            assert legs["agent"]["energy"] > 4 * legs["caller"]["energy"], legs
        finally:
            await sender.stop()

"""A supervisor in a real Chromium hears both legs of a Genesys AudioHook call (PCMU and L16).

The AudioHook client streams a loud agent on ``internal`` and a quiet caller on ``external``
in 200 ms frames; the console's ``getStats()`` must show both legs arriving as PCMU with the
agent's energy well above the caller's.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from tests.e2e.test_console import heard_both_legs
from tests.support.audiohook import L16_STEREO, PCMU_STEREO, AudioHookClient, voices
from tests.support.server import running_server

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("media", [PCMU_STEREO, L16_STEREO], ids=["PCMU", "L16"])
async def test_supervisor_hears_an_audiohook_call_in_chromium(
    tmp_path: Path, browser: Browser, media: dict[str, Any]
) -> None:
    conversation = str(uuid.uuid4())
    async with running_server(tmp_path) as server:
        client = AudioHookClient(f"{server.ws_url}/ingest/audiohook", api_key=None)  # loopback trust
        await client.connect()
        try:
            await client.open(
                conversation, [media], custom_config={"agentId": "agent-ah", "consent": "granted", "queue": "support"}
            )
            client.start_streaming(*voices(media["format"]))
            page = await browser.new_page()
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['sup']}")
            row = page.locator(f'[data-testid="call-row"][data-call-id="{conversation}"]')
            await row.wait_for(timeout=10_000)
            assert "agent-ah" in await row.inner_text()

            await row.locator('[data-testid="listen-button"]').click()
            await page.locator('[data-testid="purpose-select"]').select_option("training")
            await page.locator('[data-testid="purpose-confirm"]').click()
            await page.locator('[data-testid="listen-panel"]').wait_for(timeout=10_000)

            console = await page.evaluate("() => ({state: liveConsole.state, pc: !!liveConsole.pc})")
            assert console["pc"], (console, await page.locator('[data-testid="status"]').inner_text())
            legs = await heard_both_legs(page)
            assert set(legs) == {"agent", "caller"}, legs
            for leg in ("agent", "caller"):
                assert legs[leg]["packets"] > 100, legs
                assert legs[leg]["energy"] > 0, legs
                assert legs[leg]["codec"] == "audio/PCMU", legs
            assert legs["agent"]["energy"] > 4 * legs["caller"]["energy"], legs

            await page.locator('[data-testid="stop-button"]').click()
            await client.close()
        finally:
            await client.aclose()

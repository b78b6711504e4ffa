"""A SIPREC call placed by sipp is heard in the real Chromium console: both legs, the agent
louder, PCMU end to end (sipp's RTP is forwarded untouched to the browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from tests.e2e.test_console import stats
from tests.interop.test_siprec_sipp import legs_pcap, sipp_for, siprec_settings
from tests.support.server import running_server
from tests.support.sipp.bodies import VENDORS
from tests.support.sipp.scenario import call_scenario
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

CONNECTED_JS = "() => !!(window.liveConsole && window.liveConsole.pc && window.liveConsole.pc.connectionState === 'connected')"


async def test_siprec_call_is_heard_in_chromium(tmp_path: Path, browser: Browser) -> None:
    vendor = VENDORS["cisco"]
    call_id = "CUBE-e2e-1"
    sync = tmp_path / "sync"
    sync.mkdir()
    pcap = legs_pcap(tmp_path / "legs.pcap", vendor, "PCMU", seconds=6.0)
    scenario = call_scenario(vendor, tmp_path, pcap=pcap, sync_dir=sync, call_id=call_id)
    async with running_server(tmp_path / "data", **siprec_settings(vendor)) as server:
        async with sipp_for(server, scenario, tmp_path / "sipp", "e2e") as sipp:
            await sipp.wait_marker("answered", sync)
            page = await browser.new_page()
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['sup']}")
            row = page.locator(f'[data-testid="call-row"][data-call-id="{call_id}"]')
            await row.wait_for(timeout=10_000)
            assert vendor.agent_id in await row.inner_text()

            await row.locator('[data-testid="listen-button"]').click()
            await page.locator('[data-testid="purpose-select"]').select_option("quality")
            await page.locator('[data-testid="purpose-confirm"]').click()
            await page.locator('[data-testid="listen-panel"]').wait_for(timeout=10_000)
            await page.wait_for_function(CONNECTED_JS, timeout=15_000)

            sipp.proceed()  # play both legs

            async def heard() -> dict[str, Any] | None:
                legs = await stats(page)
                if all(legs.get(leg) and legs[leg]["packets"] > 100 and legs[leg]["energy"] > 0 for leg in ("agent", "caller")):
                    return legs
                return None

            legs = await wait_for(heard, pcap.seconds + 15, "both legs to be heard in Chromium", every=0.25)
            for leg in ("agent", "caller"):
                assert legs[leg]["codec"] == "audio/PCMU", legs
            assert legs["agent"]["energy"] > 4 * legs["caller"]["energy"], legs
            session_id = await page.evaluate("window.liveConsole.sessionId")
            assert session_id

            for marker in ("held", "resumed"):
                await sipp.wait_marker(marker, sync, timeout=pcap.seconds + 20)
                sipp.proceed()
            returncode = await sipp.wait()
            assert returncode == 0, sipp.logs()

        node = server.state.node
        await wait_for(lambda: not node.listens.sessions, 30, "the BYE to end the listen")

        async def ended() -> bool:
            return any(e.kind == "listen.ended" for e in await node.ledger.entries(session_id=session_id))

        await wait_for(ended, 30, "the listen's end on record")
        entries = await node.ledger.entries(session_id=session_id)
        assert [e.kind for e in entries] == ["listen.started", "listen.ended"], [(e.kind, e.fields) for e in entries]
        assert entries[0].fields["agent_id"] == vendor.agent_id
        assert entries[1].fields["reason"] == "call-ended"

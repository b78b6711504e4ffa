"""Sign-in and sign-out in a real Chromium: the password form, the session cookie's flags,
the sign-out button, and that the signed-out cookie no longer works on the server."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from tests.support.server import running_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


async def poll(page: Page, script: str, timeout_s: float = 10.0) -> object:
    """Wait until ``script`` is truthy (``wait_for_function`` needs eval, which our CSP forbids)."""
    return await wait_for(lambda: page.evaluate(script), timeout_s, script, every=0.1)


async def test_password_sign_in_and_sign_out(tmp_path: Path, browser: Browser) -> None:
    async with running_server(tmp_path) as server:
        server.state.users.set_password("auditor", "a long passphrase")
        context = await browser.new_context(locale="de-DE")
        page = await context.new_page()
        await page.goto(f"{server.base_url}/signin/")
        assert await page.text_content("#password-heading") == "Mit Benutzername und Passwort anmelden"
        assert await page.is_hidden("[data-testid=oidc-card]")  # no provider configured

        await page.fill("[data-testid=signin-user]", "auditor")
        await page.fill("[data-testid=signin-password]", "wrong")
        await page.click("[data-testid=password-submit]")
        await poll(page, "!document.getElementById('password-error').hidden")
        assert await page.text_content("[data-testid=password-error]") == "Benutzername oder Passwort ist falsch."

        await page.fill("[data-testid=signin-password]", "a long passphrase")
        await page.click("[data-testid=password-submit]")
        await page.wait_for_url(f"{server.base_url}/audit/")
        cookie = next(c for c in await context.cookies() if c["name"] == "live_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]

        await poll(page, "!document.getElementById('signout').hidden")
        assert await page.text_content("[data-testid=signout]") == "Abmelden"
        await page.click("[data-testid=signout]")
        await page.wait_for_url(f"{server.base_url}/signin/?error=signed_out")
        assert "live_session" not in {c["name"] for c in await context.cookies()}
        await context.close()

        # The cookie the browser held is revoked on the server, not only deleted.
        async with aiohttp.ClientSession() as http, http.get(
            f"{server.base_url}/api/me", headers={"Cookie": f"live_session={cookie['value']}"}
        ) as response:
            assert response.status == 401


async def test_the_sign_in_page_offers_the_organisation_sign_in_when_configured(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_server(
        tmp_path, oidc_issuer="http://127.0.0.1:9/", oidc_client_id="live", oidc_client_secret="x"
    ) as server:
        page = await browser.new_page()
        await page.goto(f"{server.base_url}/signin/?next=/console/")
        await poll(page, "!document.getElementById('oidc-card').hidden")
        assert await page.get_attribute("[data-testid=oidc-link]", "href") == "/auth/oidc/login?next=%2Fconsole%2F"


@pytest.mark.parametrize("user, home", [("sup", "/console/"), ("agent", "/agent/")])
async def test_every_signed_in_page_can_sign_out(tmp_path: Path, browser: Browser, user: str, home: str) -> None:
    async with running_server(tmp_path) as server:
        context = await browser.new_context(locale="en-GB")
        page = await context.new_page()
        await page.goto(f"{server.base_url}/auth/link?token={server.tokens[user]}")
        assert page.url.endswith(home)
        await poll(page, "!document.getElementById('signout').hidden")
        assert await page.text_content("[data-testid=signout]") == "Sign out"
        await page.click("[data-testid=signout]")
        await page.wait_for_url(f"{server.base_url}/signin/?error=signed_out")
        await page.goto(f"{server.base_url}{home}")
        assert page.url.endswith("/signin/")  # the page itself is closed to a signed-out browser
        await context.close()

"""OpenID Connect sign-in wired into the real server, against a real provider (oidc-provider).

The provider's accounts carry ``live_role`` and ``live_teams`` claims; the server turns them
into a session whose role and teams every route then checks. Tampered and wrong-audience ID
tokens from the same provider are refused by the same client code in ``test_oidc.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from live.auth.oidc import OidcClient, OidcSettings, TokenResponse
from live.types import Role
from tests.helpers import reserved_port
from tests.integration.test_oidc import browse, browser, real_tokens
from tests.support.oidc_provider import OidcProvider, ProviderUnavailable, running_oidc_provider
from tests.support.server import RunningServer, running_server


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """A port held for this module's server (the provider must know its redirect URI first)."""
    with reserved_port() as held:
        yield held.getsockname()[1]


@pytest.fixture(scope="module")
def provider(port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    try:
        with running_oidc_provider(
            f"http://127.0.0.1:{port}/auth/oidc/callback", tmp_path_factory.mktemp("oidc")
        ) as running:
            yield running
    except ProviderUnavailable as exc:
        pytest.fail(f"the OIDC test provider needs node and npm (deploy/run-tests.sh): {exc}")


@contextlib.asynccontextmanager
async def oidc_server(tmp_path: Path, provider: OidcProvider, port: int, **extra: Any) -> AsyncIterator[RunningServer]:
    async with running_server(
        tmp_path,
        port=port,
        oidc_issuer=provider.issuer,
        oidc_client_id="live-test",
        oidc_client_secret=provider.secret("live-test"),
        oidc_scopes="openid profile live",
        **extra,
    ) as server:
        yield server


async def test_supervisor_signs_in_with_the_provider_and_gets_their_claims(
    tmp_path: Path, provider: OidcProvider, port: int
) -> None:
    async with oidc_server(tmp_path, provider, port) as server, browser() as http:
        page = await browse(http, f"{server.base_url}/auth/oidc/login", provider, login="sam")
        assert page.status == 200, (page, provider.log())
        assert 'content="0;url=/console/"' in page.text  # the supervisor's home
        async with http.get(f"{server.base_url}/api/me") as response:
            me = await response.json()
        assert (me["user_id"], me["role"], me["teams"]) == ("sam", "supervisor", ["billing", "sales"])
        assert me["csrf_token"]
        async with http.get(f"{server.base_url}/api/calls") as response:
            assert response.status == 200
        async with http.get(f"{server.base_url}/api/audit/sessions") as response:
            assert response.status == 403  # a supervisor reads no ledger
        async with http.post(f"{server.base_url}/auth/signout") as response:
            assert response.status == 403  # no CSRF token
        cookie = next(c.value for c in http.cookie_jar if c.key == "live_session")
        async with http.post(
            f"{server.base_url}/auth/signout", headers={"X-CSRF-Token": me["csrf_token"]}
        ) as response:
            assert response.status == 200
        async with http.get(f"{server.base_url}/api/me", headers={"Cookie": f"live_session={cookie}"}) as response:
            assert response.status == 401  # the copied cookie is revoked on the server


async def test_each_role_lands_on_its_page_and_an_agent_cannot_listen(
    tmp_path: Path, provider: OidcProvider, port: int
) -> None:
    homes = {"dana": ("/audit/", Role.AUDITOR), "alex": ("/agent/", Role.AGENT), "ari": ("/console/", Role.ADMIN)}
    async with oidc_server(tmp_path, provider, port) as server:
        for login, (home, role) in homes.items():
            async with browser() as http:
                page = await browse(http, f"{server.base_url}/auth/oidc/login", provider, login=login)
                assert f'content="0;url={home}"' in page.text, page
                async with http.get(f"{server.base_url}/api/me") as response:
                    me = await response.json()
                assert me["role"] == role.value
                if role is Role.AGENT:
                    async with http.post(
                        f"{server.base_url}/api/calls/CA-1/listen",
                        json={"type": "offer", "sdp": "v=0"},
                        headers={"X-CSRF-Token": me["csrf_token"]},
                    ) as response:
                        assert response.status == 403
                        assert (await response.json())["error"]["code"] == "role_forbidden"


async def test_a_provider_account_cannot_take_over_a_local_user(
    tmp_path: Path, provider: OidcProvider, port: int
) -> None:
    async with oidc_server(tmp_path, provider, port) as server:
        server.state.users.add("sam", Role.ADMIN, display_name="Local Sam")
        async with browser() as http:
            page = await browse(http, f"{server.base_url}/auth/oidc/login", provider, login="sam")
            assert page.status == 403 and "oidc_user_collides" in page.text
            assert "live_session" not in {c.key for c in http.cookie_jar}
        # Accounts with no role claim get no session either.
        async with browser() as http:
            page = await browse(http, f"{server.base_url}/auth/oidc/login", provider, login="nora")
            assert page.status == 403 and "oidc_no_role" in page.text
            async with http.get(f"{server.base_url}/api/me") as response:
                assert response.status == 401


async def test_a_group_claim_maps_to_roles_by_setting(tmp_path: Path, provider: OidcProvider, port: int) -> None:
    async with oidc_server(
        tmp_path,
        provider,
        port,
        oidc_role_claim="groups",
        oidc_role_map="qa-supervisors=supervisor,works-council=auditor",
    ) as server, browser() as http:
        page = await browse(http, f"{server.base_url}/auth/oidc/login", provider, login="dana")
        assert page.status == 200, page
        async with http.get(f"{server.base_url}/api/me") as response:
            assert (await response.json())["role"] == "auditor"


@pytest.mark.parametrize("attack", ["tampered", "wrong_audience"])
async def test_a_bad_id_token_in_the_real_flow_signs_nobody_in(
    tmp_path: Path, provider: OidcProvider, port: int, monkeypatch: pytest.MonkeyPatch, attack: str
) -> None:
    """The server's callback gets the provider's real token response with the ID token
    swapped: a real token with one signature byte changed, or a real token the provider
    issued to another client. Neither signs the browser in."""
    if attack == "wrong_audience":
        async with OidcClient(
            OidcSettings(
                issuer=provider.issuer,
                client_id="other-app",
                client_secret=provider.secret("other-app"),
                redirect_uri=provider.redirect_uri,
                scopes=("openid", "profile", "live"),
            )
        ) as theirs:
            foreign, _auth = await real_tokens(provider, theirs, login="sam")
    real_exchange = OidcClient.exchange

    async def swapped(self: OidcClient, code: str, redirect_uri: str, code_verifier: str) -> TokenResponse:
        tokens = await real_exchange(self, code, redirect_uri, code_verifier)
        if attack == "tampered":
            head, body, signature = tokens.id_token.split(".")
            flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
            return dataclasses.replace(tokens, id_token=f"{head}.{body}.{flipped}")
        return dataclasses.replace(tokens, id_token=foreign.id_token)

    monkeypatch.setattr(OidcClient, "exchange", swapped)
    expected = {"tampered": "oidc_bad_signature", "wrong_audience": "oidc_wrong_audience"}[attack]
    async with oidc_server(tmp_path, provider, port) as server, browser() as http:
        page = await browse(http, f"{server.base_url}/auth/oidc/login", provider, login="sam")
        assert page.status == 401 and expected in page.text, page
        assert "live_session" not in {c.key for c in http.cookie_jar}
        async with http.get(f"{server.base_url}/api/me") as response:
            assert response.status == 401

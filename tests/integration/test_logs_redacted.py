"""A real ``live serve`` at DEBUG level writes no secret and no caller number to its log.

Everything that carries one is exercised: a sign-in link (token in the query string), right
and wrong passwords, bearer tokens good and bad, the session cookie, an ingest secret, a
Twilio auth token, and a call whose start message carries the caller's number.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from live.auth import UserStore
from live.server.logs import redact
from live.types import Role
from tests.integration.test_policy_enforced import LOUD
from tests.support.listener import Listener
from tests.support.process import start_serve
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

CALLER_NUMBER = "+4930123456789"
PASSWORD = "correct-horse-battery"
WRONG_PASSWORD = "hunter2-wrong-guess"
INGEST_SECRET = "ingest-secret-abcdef"
TWILIO_TOKEN = "twilio-auth-token-123456"


async def test_no_secret_or_number_reaches_the_log(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json")
    users.add("sup", Role.SUPERVISOR, display_name="Sam Supervisor", password=PASSWORD)
    token = users.issue_token("sup")
    proc = start_serve(
        tmp_path,
        {
            "LIVE_LOG_LEVEL": "DEBUG",
            "LIVE_INGEST_SECRET": INGEST_SECRET,
            "LIVE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "LIVE_SESSION_SECRET": "session-secret-for-the-log-test",
        },
    )
    cookies: list[str] = []
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            async with http.get(f"{proc.base_url}/auth/link", params={"token": token}, allow_redirects=False) as r:
                assert r.status == 302
                cookies.append(r.cookies["live_session"].value)
            async with http.get(f"{proc.base_url}/auth/link", params={"token": "lt_not-a-real-token-x"}, allow_redirects=False):
                pass
            async with http.post(f"{proc.base_url}/auth/signin", json={"user": "sup", "password": WRONG_PASSWORD}) as r:
                assert r.status == 401
            async with http.post(f"{proc.base_url}/auth/signin", json={"user": "sup", "password": PASSWORD}) as r:
                assert r.status == 200
                cookies.append(r.cookies["live_session"].value)
            async with http.get(f"{proc.base_url}/api/me", headers={"Cookie": f"live_session={cookies[-1]}"}) as r:
                assert r.status == 200
            async with http.get(f"{proc.base_url}/api/calls", headers={"Authorization": "Bearer lt_guessed-token-value"}) as r:
                assert r.status == 401

            sender = TwilioSender(
                f"{proc.ws_url}/ingest/twilio", "CA-logs", LOUD, LOUD, caller=CALLER_NUMBER, **{"from": CALLER_NUMBER}
            )
            await sender.start(headers={"X-Live-Ingest-Secret": INGEST_SECRET})
            listener = Listener(proc.base_url, token)
            try:

                async def on_roster() -> bool:
                    async with http.get(f"{proc.base_url}/api/calls", headers={"Authorization": f"Bearer {token}"}) as r:
                        return any(c["call_id"] == "CA-logs" for c in (await r.json())["calls"])

                await wait_for(on_roster, 30, "CA-logs on the roster")
                await listener.listen("CA-logs")
                await listener.stop()
            finally:
                await listener.close()
                await sender.stop()
    finally:
        assert proc.stop() == 0
    log = proc.log()
    assert "GET /auth/link 302" in log and "POST /auth/signin 401" in log  # the access log is on
    assert "listen" in log.lower()
    for secret in (token, "lt_not-a-real-token-x", "lt_guessed-token-value", PASSWORD, WRONG_PASSWORD,
                   INGEST_SECRET, TWILIO_TOKEN, CALLER_NUMBER, "30123456789", *cookies):
        assert secret not in log, f"{secret[:6]}… is in the log"
    pwd_lines = [line for line in log.splitlines() if "ice-pwd:" in line]
    assert pwd_lines and all(line.endswith("ice-pwd:[redacted]") for line in pwd_lines)  # aiortc's SDP dump


def test_the_filter_masks_what_slips_through() -> None:
    line = (
        f"GET /auth/link?token={'lt_' + 'a' * 40} Authorization: Bearer abc.def "
        f'password={WRONG_PASSWORD} {{"password": "{PASSWORD}"}} caller {CALLER_NUMBER} '
        "live_session=eyJ1Ijoic3VwIn0.sig from 203.0.113.9:443"
    )
    masked = redact(line)
    for secret in ("a" * 40, "abc.def", WRONG_PASSWORD, PASSWORD, CALLER_NUMBER, "eyJ1Ijoic3VwIn0"):
        assert secret not in masked
    assert "203.0.113.9:443" in masked  # addresses stay: operators need them

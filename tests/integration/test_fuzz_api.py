"""Schemathesis fuzzes a real server against its own OpenAPI document.

Every operation but the WebSockets is called by nobody and by each role's bearer token with
generated valid and invalid input (schemathesis' coverage, fuzzing and stateful phases, at
most ``MAX_EXAMPLES`` cases an operation, from a fixed seed), while a simulated Twilio call
is live so call operations reach the policy and the WebRTC code instead of stopping at 404.
Each role is its own test with its own server, one ``st`` run at a time: how long a run
takes depends on the machine's load, so nothing here depends on it (no deadline, no
response-time or "too slow" health checks; the timeouts only bound a broken run). No answer may be
a 5xx, every status, media type and JSON body must be the documented one, and the server
must still answer ``/healthz`` afterwards. The requests each run made are read back from its
HAR report: a token that was never accepted would make the run pass without testing much.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from live.server.openapi import OPENAPI_PATH
from live.server.routes import ACCESS, document
from live.types import Role
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

MAX_EXAMPLES = 40
RUN_TIMEOUT_S = 270  # under pytest's 300 s per test: a bound on a hung run, not a budget
SEED = 20240917  # reproducible: a failure prints the case, `st replay` needs its id
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
WEBSOCKETS = [path for (_m, path), rule in ACCESS.items() if rule.websocket]
OIDC_ONLY = "^/auth/oidc/"
CALL_ID = "CAfuzz0001"
ROLE_OF = {"sup": Role.SUPERVISOR, "sup2": Role.SUPERVISOR, "agent": Role.AGENT, "auditor": Role.AUDITOR, "admin": Role.ADMIN}
SILENCE = b"\xff" * 1600  # μ-law silence, 200 ms


def st_command(base_url: str, report: Path, config: Path, *extra: str) -> list[str]:
    st = Path(sys.executable).with_name("st")
    args = [str(st), "--config-file", str(config), "run", base_url + OPENAPI_PATH, "--url", base_url]
    args += ["--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED)]
    # One worker per run (the runs go in parallel): with several threads, hypothesis' lambda
    # descriptions (ast.parse) crashed st itself on CPython 3.11 ("AST constructor recursion").
    args += ["--workers", "1", "--request-timeout", "120", "--no-color"]
    # Hypothesis' "too slow" health check measures generation time, which a busy machine
    # stretches; it says nothing about the server under test.
    args += ["--suppress-health-check", "too_slow", "--generation-database", "none"]
    args += ["--report", "har", "--report-har-path", str(report)]
    for path in WEBSOCKETS:
        args += ["--exclude-path", path]
    return [*args, *extra]


async def run_st(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``st`` in ``cwd`` (it keeps a ``.schemathesis/`` cache there)."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


def har_answers(report: Path) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request a run made."""
    entries = json.loads(report.read_text())["log"]["entries"]
    return [
        (e["request"]["method"], re.sub(r"^https?://[^/]+", "", e["request"]["url"]).split("?")[0], e["response"]["status"])
        for e in entries
    ]


def template_of(path: str) -> tuple[str, ...]:
    """The documented path templates ``path`` matches (aiohttp's ``{name}``: one segment)."""
    return tuple(
        t for t in document()["paths"] if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", t), path)
    )


@contextlib.asynccontextmanager
async def live_call(server: RunningServer) -> AsyncIterator[str]:
    """A Twilio call for the test agent, on the roster while the block runs."""
    sender = TwilioSender(server.twilio_url, CALL_ID, SILENCE, SILENCE, agent="agent", consent="granted")
    await sender.start()
    try:
        await wait_for(
            lambda: any(c.call_id == CALL_ID for c in server.state.node.calls.calls()),
            60,
            "the simulated call on the roster",
        )
        yield CALL_ID
    finally:
        await sender.stop()


@contextlib.asynccontextmanager
async def stub_issuer() -> AsyncIterator[str]:
    """An OpenID provider that only answers discovery: enough for ``/auth/oidc/login``."""
    issuer = ""

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "jwks_uri": f"{issuer}/jwks",
            }
        )

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        issuer = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield issuer
    finally:
        await runner.cleanup()


async def assert_healthy(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.base_url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


@pytest.mark.parametrize("user", [None, *ROLE_OF], ids=lambda user: user or "nobody")
async def test_no_server_errors_and_answers_as_documented(tmp_path: Path, user: str | None) -> None:
    config = tmp_path / "schemathesis.toml"
    # The call id is pinned so call operations reach the policy and WebRTC, not a 404.
    config.write_text(f'[parameters]\n"path.call_id" = "{CALL_ID}"\n')
    report = tmp_path / f"{user or 'nobody'}.har"
    # Limits far above the fuzzer's pace, so the sign-in handlers themselves get fuzzed
    # (the limits have their own tests in test_abuse_limits.py).
    async with running_server(
        tmp_path / "live",
        signin_failures_per_minute=100_000,
        signin_user_failures_per_minute=100_000,
        signin_address_failures_per_minute=100_000,
        bad_tokens_per_minute=100_000,
    ) as server, live_call(server):
        auth = ["-H", f"Authorization: Bearer {server.tokens[user]}"] if user else []
        args = st_command(server.base_url, report, config, "--exclude-path-regex", OIDC_ONLY, *auth)
        code, output = await run_st(args, tmp_path)
        await assert_healthy(server)
        assert any(c.call_id == CALL_ID for c in server.state.node.calls.calls()), "the call did not survive"

    assert code == 0, f"schemathesis as {user or 'nobody'} failed:\n{output[-8000:]}"
    answers = har_answers(report)
    assert len(answers) > 100, user
    role = ROLE_OF[user] if user else None
    succeeded = {(m, t) for m, path, status in answers if status < 400 for t in template_of(path)}
    # Success only where the table lets this role (or nobody) in at all.
    for method, template in succeeded:
        rule = ACCESS[("GET" if method == "HEAD" else method, template)]
        assert rule.allows(role), (user, method, template)
    if user is not None:  # the token was used, and the call was reached
        assert ("GET", "/api/me") in succeeded, user
    if user in ("agent", "admin"):
        assert ("POST", "/api/calls/{call_id}/consent") in succeeded, user


async def test_oidc_routes_answer_as_documented(tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text("")
    report = tmp_path / "oidc.har"
    async with stub_issuer() as issuer, running_server(
        tmp_path / "live", oidc_issuer=issuer, oidc_client_id="live", oidc_client_secret="s3cret"
    ) as server:
        code, output = await run_st(
            st_command(server.base_url, report, config, "--include-path-regex", OIDC_ONLY), tmp_path
        )
        await assert_healthy(server)
    assert code == 0, output[-8000:]
    statuses = {(path, status) for method, path, status in har_answers(report) if method == "GET"}
    assert ("/auth/oidc/login", 302) in statuses
    assert {status for path, status in statuses if path == "/auth/oidc/callback"} <= {400, 401}


"""A real OpenID Provider (panva/oidc-provider on Node.js) started by the tests themselves.

``server.js`` beside this file configures it: issuer ``http://127.0.0.1:<port>``, clients
``live-test`` (RS256), ``live-test-es256`` (ES256) and ``other-app``, PKCE required, the
provider's development login and consent pages, and the accounts in ``ACCOUNTS`` there.

Its npm dependencies are installed on first use (``npm ci`` from the committed
``package-lock.json``, into ``node_modules/`` beside it, which git ignores); that needs the npm
registry once. Without ``node``/``npm`` on the PATH the tests that need it are skipped.

Use ``running_oidc_provider(redirect_uri)`` (a context manager) or the ``oidc_provider``
fixture factory in a test module.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import port_taken, start_on_free_port
from tests.support.wait import wait_for_blocking

HERE = Path(__file__).resolve().parent
SECRETS = {
    "live-test": "live-test-secret",
    "live-test-es256": "live-test-es256-secret",
    "other-app": "other-app-secret",
}


class ProviderUnavailable(RuntimeError):
    """Node.js or npm is missing: the caller should skip, not fail."""


def ensure_node_modules(timeout: float = 300) -> float:
    """Install the provider's npm dependencies if missing; returns the seconds it took (0 if present).

    A lock file serialises concurrent test processes (pytest-xdist) so one installs and the
    others wait for it.
    """
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise ProviderUnavailable("node and npm are needed for the OIDC provider tests")
    marker = HERE / "node_modules" / "oidc-provider" / "package.json"
    if marker.exists():
        return 0.0
    started = time.monotonic()
    with open(HERE / "node_modules.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            command = "ci" if (HERE / "package-lock.json").exists() else "install"
            result = subprocess.run(
                [npm, command, "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"npm {command} failed in {HERE}:\n{result.stdout}\n{result.stderr}"
                )
    return time.monotonic() - started


@dataclass
class OidcProvider:
    process: subprocess.Popen[bytes]
    port: int
    redirect_uri: str
    log_path: Path

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def secret(self, client_id: str) -> str:
        return SECRETS[client_id]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running_oidc_provider(
    redirect_uri: str, log_dir: Path, *, timeout: float = 30
) -> Iterator[OidcProvider]:
    """The provider on a free loopback port, ready (discovery answers) when this yields."""
    ensure_node_modules()
    provider = start_on_free_port(
        lambda port: _start_provider(port, redirect_uri, log_dir, timeout), "the OIDC provider"
    )
    try:
        yield provider
    finally:
        provider.stop()


def _start_provider(port: int, redirect_uri: str, log_dir: Path, timeout: float) -> OidcProvider:
    log_path = log_dir / f"oidc-provider-{port}.log"
    env = {**os.environ, "NODE_ENV": "test", "DEBUG": ""}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                shutil.which("node") or "node",
                str(HERE / "server.js"),
                "--port",
                str(port),
                "--redirect-uri",
                redirect_uri,
            ],
            cwd=HERE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    provider = OidcProvider(process, port, redirect_uri, log_path)

    def discovered() -> bool:
        if process.poll() is not None:
            port_taken(provider.log(), port, "the OIDC provider")
            raise RuntimeError(f"OIDC provider exited with {process.returncode}:\n{provider.log()}")
        try:
            url = f"{provider.issuer}/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(json.load(response).get("issuer") == provider.issuer)
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return False

    try:
        wait_for_blocking(discovered, timeout, f"the OIDC provider on port {port}", every=0.1)
    except AssertionError as error:
        provider.stop()
        raise RuntimeError(f"{error}:\n{provider.log()}") from None
    except BaseException:
        provider.stop()
        raise
    return provider

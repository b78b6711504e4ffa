"""``live serve`` terminates TLS itself: https works with the configured certificate, the
session cookie is ``Secure``, and plain http on the TLS port gets nowhere."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from live.auth import UserStore
from live.types import Role
from tests.helpers import port_taken, start_on_free_port
from tests.support.process import LIVE
from tests.support.server import running_server
from tests.support.wait import wait_for_blocking


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "live test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_serve_over_tls_with_secure_cookies(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    users = UserStore(tmp_path / "data" / "users.json")
    users.add("sup", Role.SUPERVISOR)
    token = users.issue_token("sup")
    trust = ssl.create_default_context(cafile=str(cert))
    log_path = tmp_path / "serve.log"

    def serve_tls(port: int) -> tuple[subprocess.Popen[bytes], int]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")} | {
            "LIVE_PORT": str(port),
            "LIVE_DATA_DIR": str(tmp_path / "data"),
            "LIVE_TLS_CERT": str(cert),
            "LIVE_TLS_KEY": str(key),
        }
        with open(log_path, "wb") as log:
            process = subprocess.Popen([*LIVE, "serve"], stdout=log, stderr=subprocess.STDOUT, env=env)

        def ready() -> bool:
            if process.poll() is not None:
                port_taken(log_path.read_text(), port, "live serve")
                raise AssertionError(log_path.read_text())
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", timeout=1, context=trust) as r:
                    return bool(r.status == 200)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        try:
            wait_for_blocking(ready, 60, f"live serve over TLS on port {port}", every=0.1)
        except BaseException:
            process.kill()
            process.wait()
            raise
        return process, port

    process, port = start_on_free_port(serve_tls, "live serve")
    base = f"https://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            async with http.get(f"{base}/auth/link", params={"token": token}, ssl=trust, allow_redirects=False) as r:
                assert r.status == 302
                cookie = r.headers["Set-Cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert r.headers.get("Strict-Transport-Security", "").startswith("max-age=")
            # The certificate is checked: an untrusting client refuses the connection.
            try:
                async with http.get(f"{base}/healthz"):
                    raise AssertionError("a self-signed certificate must not be trusted by default")
            except aiohttp.ClientConnectorCertificateError:
                pass
            # Plain http to the TLS port is not served.
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status >= 400
            except (aiohttp.ClientError, ConnectionError):
                pass
    finally:
        process.terminate()
        assert process.wait(15) == 0, log_path.read_text()


async def test_without_tls_the_cookie_is_not_secure(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server, aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(
            f"{server.base_url}/auth/link", params={"token": server.tokens["sup"]}, allow_redirects=False
        ) as response:
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        assert "Strict-Transport-Security" not in response.headers
    # Behind a TLS-terminating proxy, an https public URL makes the cookie Secure.
    async with running_server(tmp_path / "proxied", public_url="https://live.example.com") as server, aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        async with http.get(
            f"{server.base_url}/auth/link", params={"token": server.tokens["sup"]}, allow_redirects=False
        ) as response:
            assert "Secure" in response.headers["Set-Cookie"]

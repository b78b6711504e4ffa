"""deploy/compose.yaml run as local processes: its Redis, PostgreSQL and two ``live serve``
nodes, each started from the file's own command, environment and secret files (made by
deploy/compose/make-secrets.sh, read through the image's entry point). A call ingested on
one node is heard by a supervisor on the other, and ``/metrics`` has every series the
Prometheus alerts and the Grafana dashboard use.

Docker is not used: the images' own parts (Caddy, coturn) are not run here; TURN has its own
test (test_turn_relay.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import yaml

from tests.conftest import RedisServer
from tests.conftest_pg import PostgresServer, _bindir
from tests.helpers import start_on_free_port
from tests.support.compose import DEPLOY, ROOT, Service, load_compose
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.process import LIVE, LiveProcess, live_cli, start_serve
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for, wait_for_blocking

VARIABLES = {"LIVE_DOMAIN": "localhost", "TURN_EXTERNAL_IP": "127.0.0.1"}
NODES = ("live-1", "live-2")
# Where the container runs things; the test gives each process its own.
CONTAINER_ONLY = ("LIVE_HOST", "LIVE_PORT", "LIVE_DATA_DIR")


def make_secrets(out: Path) -> Path:
    subprocess.run(
        ["sh", str(DEPLOY / "compose" / "make-secrets.sh"), "localhost"],
        env={"PATH": "/usr/bin:/bin", "SECRETS_OUT": str(out)},
        check=True,
        capture_output=True,
    )
    return out


def point_at(secrets: Path, name: str, host_port: str, local_port: int) -> None:
    """A URL secret with its compose host name (``postgres:5432``) pointed at a local port."""
    path = secrets / name
    text = path.read_text()
    assert f"@{host_port}/" in text, f"{name} does not name {host_port}: {text!r}"
    path.write_text(text.replace(f"@{host_port}/", f"@127.0.0.1:{local_port}/"))


class ComposeRedis(RedisServer):
    """redis-server with the compose service's own arguments (its secret config file)."""

    def __init__(self, service: Service) -> None:
        super().__init__()
        self.service = service
        self.password = ""

    def _start(self, port: int) -> RedisServer:
        conf = next(Path(a) for a in self.service.command if a.endswith("redis_conf"))
        self.password = conf.read_text().split()[1]
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = [binary, *self.service.command[1:], "--port", str(port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--logfile", str(self.log)]
        self.process = process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log.read_text(errors='replace')}")
            with redis.Redis(port=port, password=self.password, socket_connect_timeout=0.2) as client:
                try:
                    return bool(client.ping())
                except redis.exceptions.ConnectionError:
                    return False

        wait_for_blocking(answers, 30, f"redis-server on port {port}")
        self.port = port
        return self


class ComposePostgres(PostgresServer):
    """PostgreSQL as the image's entry point sets it up from POSTGRES_USER, POSTGRES_DB and
    POSTGRES_PASSWORD_FILE: password (SCRAM) over TCP, trust on the local socket only."""

    def __init__(self, bindir: Path, service: Service) -> None:
        super().__init__(bindir)
        self.user = service.environment["POSTGRES_USER"]
        self.database = service.environment["POSTGRES_DB"]
        self.password_file = Path(service.environment["POSTGRES_PASSWORD_FILE"])

    def start(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password_file.read_text().strip())
        if self.as_user:
            os.chown(self.base, self.as_user["user"], self.as_user["group"])
            os.chown(pwfile, self.as_user["user"], self.as_user["group"])
        self._run("initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
                  "--no-instructions")
        start_on_free_port(self._launch_on, "postgres")
        self._run("createdb", "-h", str(self.base), "-p", str(self.port), "-U", self.user, self.database)


@dataclass
class Cluster:
    nodes: list[LiveProcess]
    token: str
    ingest_secret: str
    redis: ComposeRedis
    secrets: Path


@pytest.fixture
def compose_cluster(tmp_path: Path) -> Iterator[Cluster]:
    compose = load_compose(VARIABLES)
    secrets = make_secrets(tmp_path / "secrets")
    # TURN is tested on its own; here the nodes need no relay candidates.
    (secrets / "live_ice_servers").unlink()
    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries are missing: run deploy/run-tests.sh")
    postgres = ComposePostgres(bindir, Service.of(compose, "postgres", secrets))
    bus = ComposeRedis(Service.of(compose, "redis", secrets))
    nodes: list[LiveProcess] = []
    try:
        postgres.start()
        bus.start()
        point_at(secrets, "live_ledger_url", "postgres:5432", postgres.port or 0)
        point_at(secrets, "live_redis_url", "redis:6379", bus.port or 0)
        # One user store for the cluster: made on the first node, copied to the other (the
        # README's way for local users in the compose cluster).
        first = tmp_path / NODES[0]
        live_cli(first, "users", "add", "sup", "--role", "supervisor", "--name", "Sam")
        token = live_cli(first, "users", "token", "sup")
        for name in NODES:
            service = Service.of(compose, name, secrets)
            data = tmp_path / name
            data.mkdir(exist_ok=True)
            if name != NODES[0]:
                shutil.copy2(first / "users.json", data / "users.json")
            env = {k: v for k, v in service.environment.items() if k not in CONTAINER_ONLY}
            env["SECRETS_DIR"] = str(secrets)
            assert service.command[0] == "live", service.command
            command = ["sh", str(DEPLOY / "docker-entrypoint.sh"), *LIVE, *service.command[1:]]
            nodes.append(start_serve(data, env, command=command))
        yield Cluster(nodes, token, (secrets / "live_ingest_secret").read_text().strip(), bus, secrets)
    finally:
        codes = [(node.stop(), node.log()) for node in nodes]
        bus.cleanup()
        postgres.stop()
    for code, log in codes:
        assert code == 0, log


def test_entry_point_is_the_images() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh' in dockerfile
    assert 'ENTRYPOINT ["docker-entrypoint.sh"]' in dockerfile


def get_json(node: LiveProcess, path: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(f"{node.base_url}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.load(response))


def metrics(node: LiveProcess) -> str:
    with urllib.request.urlopen(f"{node.base_url}/metrics", timeout=5) as response:
        return str(response.read().decode())


def monitored_series() -> set[str]:
    """Every ``live_*`` series the alert rules and the dashboard query."""
    rules = yaml.safe_load((DEPLOY / "monitoring" / "prometheus-alerts.yaml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())]
    return {name for expr in exprs for name in re.findall(r"\blive_[a-z_]+", expr)}


async def test_a_call_on_one_node_is_heard_on_the_other(compose_cluster: Cluster) -> None:
    (one, two), token = compose_cluster.nodes, compose_cluster.token
    loud, quiet = tone(440, 2.0, 0.5), tone(660, 2.0, 0.08)
    sender = TwilioSender(f"{one.ws_url}/ingest/twilio", "CA-compose-1", loud, quiet, consent="granted")
    await sender.start(headers={"X-Live-Ingest-Secret": compose_cluster.ingest_secret})
    listener = Listener(two.base_url, token)
    try:
        def on_two() -> bool:
            calls = get_json(two, "/api/calls", token)["calls"]
            return any(c["call_id"] == "CA-compose-1" for c in calls)  # type: ignore[attr-defined,index]

        await wait_for(on_two, 30, "CA-compose-1 in the roster of live-2", every=0.1)
        await listener.listen("CA-compose-1")
        await listener.wait_frames(50, timeout=30)
        agent, caller = listener.stats["agent"].level(), listener.stats["caller"].level()
        assert agent > 0.2
        assert 0.01 < caller < agent
        assert await listener.stop() == 200
    finally:
        await listener.close()
        await sender.stop()

    # The shared ledger (PostgreSQL, the compose file's URL and password) holds the listen.
    secrets = compose_cluster.secrets
    verify = await asyncio.to_thread(
        subprocess.run,
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), sys.executable, "-m", "live.cli", "audit", "verify", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "SECRETS_DIR": str(secrets),
             "LIVE_LEDGER_KEY_FILE": str(secrets / "ledger_signing_key")},
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    for node in (one, two):
        exposed = set(re.findall(r"^(?:# TYPE )?(live_[a-z_]+)", metrics(node), re.MULTILINE))
        assert monitored_series() <= exposed, monitored_series() - exposed
        assert "live_bus_connected 1" in metrics(node).splitlines()


async def test_bus_outage_shows_in_metrics(compose_cluster: Cluster) -> None:
    """What the BusDisconnected alert watches: 0 while Redis is down, 1 once it is back."""
    node = compose_cluster.nodes[0]
    compose_cluster.redis.stop()
    await wait_for(lambda: "live_bus_connected 0" in metrics(node).splitlines(), 30, "live_bus_connected 0")
    compose_cluster.redis.start()
    await wait_for(lambda: "live_bus_connected 1" in metrics(node).splitlines(), 30, "live_bus_connected 1")

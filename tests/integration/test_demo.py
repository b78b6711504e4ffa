"""``live demo`` as a newcomer runs it: links printed per role, simulated calls live."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, port_taken, start_on_free_port
from tests.support.wait import wait_for_blocking


@dataclass
class Demo:
    process: subprocess.Popen[str]
    port: int
    sip_port: int
    links: dict[str, str]


def start_demo(data: Path, port: int) -> Demo:
    """``live demo`` on ``port``; returns once it printed its four links."""
    sip_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "live.cli", "demo", "--port", str(port), "--data", str(data),
         "--siprec-port", str(sip_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    links: dict[str, str] = {}
    seen: list[str] = []
    assert process.stdout is not None
    while len(links) < 4:  # each line is a step; pytest's timeout bounds a hung start
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=20)
            process.stdout.close()
            port_taken("".join(seen), port, "live demo")
            raise AssertionError(f"live demo exited with {process.returncode}:\n{''.join(seen)}")
        seen.append(line)
        match = re.match(r"^(supervisor|agent|auditor|siprec): ((?:http|sip):\S+)$", line.strip())
        if match:
            links[match.group(1)] = match.group(2)
    return Demo(process, port, sip_port, links)


def test_demo_prints_links_and_runs_three_calls(tmp_path: Path) -> None:
    demo = start_on_free_port(lambda port: start_demo(tmp_path / "demo", port), "live demo")
    process, port, sip_port, links = demo.process, demo.port, demo.sip_port, demo.links
    try:
        assert set(links) == {"supervisor", "agent", "auditor", "siprec"}, links
        assert links["siprec"] == f"sip:127.0.0.1:{sip_port}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sip:  # the SIPREC port answers
            sip.settimeout(10)
            sip.sendto(
                b"OPTIONS sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKdemo\r\n"
                b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:srs@127.0.0.1>\r\nCall-ID: demo-options\r\n"
                b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                ("127.0.0.1", sip_port),
            )
            assert sip.recv(4096).startswith(b"SIP/2.0 200 ")
        assert links["supervisor"].startswith(f"http://127.0.0.1:{port}/auth/link?token=")
        token = links["supervisor"].split("token=", 1)[1]

        def three_calls() -> list[dict[str, object]]:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/calls", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                calls: list[dict[str, object]] = json.load(response)["calls"]
            return calls if len(calls) >= 3 else []

        calls = wait_for_blocking(three_calls, 60, "three simulated calls", every=0.2)
        assert {c["source"] for c in calls} == {"twilio"}
        assert len({c["agent_id"] for c in calls}) == 3
    finally:
        process.terminate()
        process.wait(timeout=20)
        assert process.stdout is not None
        process.stdout.close()
    assert process.returncode == 0

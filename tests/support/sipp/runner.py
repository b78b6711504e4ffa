"""Run sipp (Debian's ``sip-tester``) against a test server, and talk to its running scenario.

One ``Sipp`` is one sipp process placing one call (``-m 1``) of a scenario from
``scenario``. Everything sipp writes goes to files in its work directory: its error log
(``-trace_err``: unexpected messages and why a call failed) and the message trace
(``-trace_msg``: every SIP message sent and received), which ``messages()`` parses so a test
can assert on what the server answered.

The scenarios meet the test at sync points: sipp touches a file (``wait_marker``) and waits
in a ``<recv request="INFO">`` until the test sends that INFO (``proceed``). The INFO goes
straight to sipp's port, matched to the call by its Call-ID, which ``-cid_str`` fixes.
Replaying a pcap needs a raw socket, so sipp runs as root here.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from tests.helpers import port_taken
from tests.support.wait import wait_for

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
_TRACE_SPLIT = re.compile(r"^-{20,}.*$", re.MULTILINE)
_TRACE_HEAD = re.compile(r"^\s*(UDP|TCP|TLS) message (sent|received)", re.IGNORECASE)


def free_udp_port() -> int:
    """A UDP port sipp is told to use (it binds it itself): a taken one fails loudly."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TracedMessage:
    direction: str  # "sent" | "received"
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def status(self) -> int | None:
        match = re.match(r"SIP/2\.0 (\d{3})", self.first_line)
        return int(match.group(1)) if match else None

    @property
    def cseq_method(self) -> str:
        match = re.search(r"^CSeq:\s*\d+\s+(\S+)", self.text, re.MULTILINE | re.IGNORECASE)
        return match.group(1).upper() if match else ""

    @property
    def body(self) -> str:
        return self.text.split("\n\n", 1)[1] if "\n\n" in self.text else ""


class Sipp:
    def __init__(
        self,
        scenario: Path,
        target: tuple[str, int],
        workdir: Path,
        *,
        call_id: str,
        transport: str = "u1",
        timeout_s: int = 30,
        service: str = "siprec",
    ) -> None:
        self.scenario = scenario
        self.target = target
        self.workdir = workdir
        self.call_id = call_id
        self.transport = transport
        self.timeout_s = timeout_s
        self.service = service
        self.port = free_udp_port()
        self.process: asyncio.subprocess.Process | None = None
        self._infos = 0
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def error_log(self) -> Path:
        return self.workdir / "errors.log"

    @property
    def message_log(self) -> Path:
        return self.workdir / "messages.log"

    def argv(self) -> list[str]:
        host, port = self.target
        return [
            SIPP, f"{host}:{port}",
            "-sf", str(self.scenario),
            "-s", self.service,
            "-i", "127.0.0.1",
            "-p", str(self.port),
            "-t", self.transport,
            "-m", "1",
            "-cid_str", self.call_id,
            "-timeout", f"{self.timeout_s}s",
            "-timeout_error",
            "-nostdin",
            "-trace_err", "-error_file", str(self.error_log),
            "-trace_msg", "-message_file", str(self.message_log),
        ]  # fmt: skip

    async def start(self) -> Self:
        out, err = (self.workdir / "stdout.txt").open("wb"), (self.workdir / "stderr.txt").open("wb")
        with out, err:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.workdir
            )
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def wait(self, timeout: float | None = None) -> int:
        """sipp's exit status (0: every call succeeded); fails loudly with its logs."""
        assert self.process is not None
        try:
            status = await asyncio.wait_for(self.process.wait(), timeout or self.timeout_s + 15)
        except TimeoutError:
            raise AssertionError(f"sipp did not exit in time\n{self.logs()}") from None
        if status != 0:
            # Its UDP port, free when chosen, taken by another process since: say so.
            port_taken(self.logs(), self.port, "sipp")
        return status

    async def wait_marker(self, name: str, sync_dir: Path, timeout: float = 20) -> None:
        """Wait until the scenario touches ``sync_dir/name`` (or sipp exits: then fail)."""

        def reached() -> bool:
            if (sync_dir / name).exists():
                return True
            if self.process is not None and self.process.returncode is not None:
                port_taken(self.logs(), self.port, "sipp")
                raise AssertionError(f"sipp exited ({self.process.returncode}) before {name!r}\n{self.logs()}")
            return False

        try:
            await wait_for(reached, timeout, f"sipp's scenario to reach {name!r}")
        except AssertionError as exc:
            if "sipp exited" in str(exc):
                raise
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def proceed(self) -> None:
        """Release the scenario from its current ``<recv request="INFO">``."""
        self._infos += 1
        message = (
            f"INFO sip:sipp@127.0.0.1:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-test-sync-{self._infos}\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:test@127.0.0.1>;tag=test-sync\r\n"
            "To: <sip:sipp@127.0.0.1>\r\n"
            f"Call-ID: {self.sipp_call_id}\r\n"
            "CSeq: 1 INFO\r\n"  # not above sipp's own: sipp would continue from ours
            "Content-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), ("127.0.0.1", self.port))

    @property
    def sipp_call_id(self) -> str:
        """The SIP Call-ID of the scenario's (only) call."""
        return self.call_id.replace("%u", "1")

    def messages(self) -> list[TracedMessage]:
        """The SIP messages sipp sent and received, in order, lines ending in ``\\n``."""
        if not self.message_log.exists():
            return []
        text = self.message_log.read_text(errors="replace").replace("\r\n", "\n")
        out = []
        for chunk in _TRACE_SPLIT.split(text):
            head, _, rest = chunk.strip("\n").partition("\n")
            match = _TRACE_HEAD.match(head)
            if match:
                out.append(TracedMessage(match.group(2).lower(), rest.strip("\n") + "\n"))
        return out

    def received(self, status: int | None = None, method: str = "") -> list[TracedMessage]:
        return [
            m for m in self.messages()
            if m.direction == "received" and (status is None or m.status == status)
            and (not method or m.cseq_method == method.upper())
        ]  # fmt: skip

    def logs(self) -> str:
        parts = []
        for name in ("errors.log", "stderr.txt", "stdout.txt", "messages.log"):
            path = self.workdir / name
            if path.exists():
                text = path.read_text(errors="replace")
                parts.append(f"--- sipp {name} ---\n{text[-6000:]}")
        return "\n".join(parts) or "(sipp wrote no logs)"

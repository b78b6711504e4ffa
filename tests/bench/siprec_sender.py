"""SIPREC recording calls for the ingest benchmark: dialogs over UDP, two RTP legs per call.

``SiprecCalls`` plays the recording client (an SBC) for N calls at once. The SIP text is the
test client's (``tests/support/sip_client.py``: multipart SDP offer + RFC 7865 metadata,
``Require: siprec``); all dialogs share one UDP socket and responses are routed by Call-ID.
INVITEs are retransmitted on RFC 3261 timer A (T1, 2·T1, …) so a burst of call set-ups
survives a full socket buffer, and a retransmitted 200 is ACKed again (§13.2.2.4).

Media: every call's two legs are sent for one 20 ms tick by ``tick()`` with one
``struct.pack_into`` and one ``socket.sendto`` per packet, from two sockets (one per leg, so
each server port sees one source address). The payload is the benchmark marker
(``marker.py``) for the tick: the same 160 bytes for every call's leg in that tick, so a
listener can count and time them.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from tests.support.sip_client import (
    BOUNDARY,
    METADATA,
    Dialog,
    Response,
    SipClient,
    multipart,
    parse_response,
    sdp_offer,
)

T1 = 0.5  # RFC 3261 §17.1.1.1
INVITE_TRIES = 6  # timer A doublings before a set-up counts as failed (0.5 + 1 + … + 16 s)
PCMU = 0
SAMPLES_PER_TICK = 160  # 20 ms at 8 kHz
AGENT_AOR = r"^sip:agent-bench-"  # the server's LIVE_SIPREC_AGENT_AOR: this client's agents

_SEQ_TS_SSRC = struct.Struct("!HII")  # RTP header bytes 2-11 (RFC 3550 §5.1)
_TO_TAG = re.compile(r";tag=([^;>\s]+)")
_PORTS = re.compile(r"(?m)^m=audio (\d+)")


class SetupFailed(Exception):
    """A call's INVITE was refused or never answered."""


@dataclass(slots=True)
class RecordedCall:
    call_id: str  # the call's id in live (X-Live-Call-Id)
    dialog: Dialog
    ports: tuple[int, int]  # agent, caller


class DialogSocket(SipClient):
    """The test client's UDP socket, with final responses routed to the dialog awaiting them."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, "udp")
        self.waiting: dict[str, asyncio.Future[Response]] = {}  # by Call-ID
        self.confirmed: dict[str, Dialog] = {}  # ACKed dialogs, by Call-ID
        self.server_requests: dict[str, int] = {}  # BYE (media timeout), UPDATE, … by method

    def _incoming(self, data: bytes) -> None:
        response = parse_response(data)
        if response is None:
            method = data.split(b" ", 1)[0].decode("ascii", "replace")
            self.server_requests[method] = self.server_requests.get(method, 0) + 1
            return
        if response.status < 200:
            return
        call_id = response.header("call-id")
        future = self.waiting.get(call_id)
        if future is not None and not future.done():
            future.set_result(response)
        elif response.status == 200 and response.header("cseq").endswith("INVITE"):
            dialog = self.confirmed.get(call_id)
            if dialog is not None:  # our ACK was lost: the server resends its 200
                self.request("ACK", dialog, cseq=dialog.cseq - 1)

    async def transact(
        self, method: str, dialog: Dialog, tries: int = INVITE_TRIES, **request: Any
    ) -> Response:
        """Send a request, retransmitted on timer A with one branch, until a final response."""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.waiting[dialog.call_id] = future
        branch = None
        try:
            for attempt in range(tries):
                branch = self.request(method, dialog, branch=branch, **request)
                try:
                    return await asyncio.wait_for(asyncio.shield(future), T1 * 2**attempt)
                except TimeoutError:
                    continue
            raise SetupFailed(f"{method} {dialog.call_id}: no final response")
        finally:
            self.waiting.pop(dialog.call_id, None)


class RtpLegs:
    """Every call's two RTP legs; ``tick()`` sends one packet on each."""

    def __init__(self) -> None:
        self.sockets = []
        for _ in range(2):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            self.sockets.append(sock)
        # per leg: (ssrc, first sequence number - first tick, server address)
        self.legs: tuple[list[tuple[int, int, tuple[str, int]]], ...] = ([], [])
        self.buffer = bytearray(12 + SAMPLES_PER_TICK)
        self.buffer[0] = 0x80  # version 2, no padding, extension or CSRC
        self.buffer[1] = PCMU
        self.sent = 0
        self.send_errors = 0

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    def add(self, ports: tuple[int, int], tick: int) -> None:
        for leg, port in enumerate(ports):
            seq0 = secrets.randbelow(1 << 16) - tick  # any start (RFC 3550 §5.1)
            self.legs[leg].append((secrets.randbits(32), seq0, ("127.0.0.1", port)))

    def remove_all(self) -> None:
        for legs in self.legs:
            legs.clear()

    def tick(self, tick: int, payloads: tuple[bytes, bytes]) -> None:
        buffer = self.buffer
        pack = _SEQ_TS_SSRC.pack_into
        timestamp = (tick * SAMPLES_PER_TICK) & 0xFFFFFFFF
        errors = 0
        for leg in (0, 1):
            buffer[12:] = payloads[leg]
            send = self.sockets[leg].sendto
            for ssrc, seq0, address in self.legs[leg]:
                pack(buffer, 2, (seq0 + tick) & 0xFFFF, timestamp, ssrc)
                try:
                    send(buffer, address)
                except OSError:  # full send buffer (BlockingIOError) or ICMP-refused port
                    errors += 1
        self.sent += len(self.legs[0]) + len(self.legs[1]) - errors
        self.send_errors += errors

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


class SiprecCalls:
    """N recorded calls on one SRS: ``grow``, ``tick`` every 20 ms, ``aclose`` (BYEs)."""

    def __init__(self, host: str, port: int, run_id: str, concurrency: int = 16) -> None:
        self.sip = DialogSocket(host, port)
        self.rtp = RtpLegs()
        self.run_id = run_id
        self.calls: list[RecordedCall] = []
        self.failures: list[str] = []
        self.semaphore = asyncio.Semaphore(concurrency)
        self.current_tick = 0  # set by the ticker: new legs join at this tick

    async def start(self) -> None:
        await self.sip.__aenter__()

    @property
    def legs(self) -> int:
        return len(self.rtp.legs[0]) + len(self.rtp.legs[1])

    async def _open(self, index: int) -> RecordedCall:
        async with self.semaphore:
            call_id = f"bench-sip-{self.run_id}-{index}"
            dialog = Dialog(f"{call_id}@sbc.bench", secrets.token_hex(4))
            metadata = METADATA.format(
                agent=f"agent-bench-{index}", agent_label="1", caller_label="2"
            )
            response = await self.sip.transact(
                "INVITE",
                dialog,
                body=multipart(sdp_offer(self.rtp.port), metadata),
                content_type=f"multipart/mixed;boundary={BOUNDARY}",
                extra=[
                    ("Require", "siprec"),
                    ("X-Live-Call-Id", call_id),
                    ("X-Live-Consent", "granted"),  # else the caller leg is gated to silence
                ],
            )
            if response.status != 200:
                raise SetupFailed(f"INVITE {call_id}: {response.status} {response.reason}")
            tag = _TO_TAG.search(response.header("to"))
            ports = [int(p) for p in _PORTS.findall(response.body)]
            if tag is None or len(ports) != 2:
                raise SetupFailed(f"INVITE {call_id}: 200 without a To tag or two streams")
            dialog.to_tag = tag.group(1)
            self.sip.request("ACK", dialog)  # the ACK carries the INVITE's CSeq number
            dialog.cseq += 1
            self.sip.confirmed[dialog.call_id] = dialog
            call = RecordedCall(call_id, dialog, (ports[0], ports[1]))
            self.rtp.add(call.ports, self.current_tick)
            return call

    async def grow(self, n: int) -> dict[str, Any]:
        started = time.monotonic()
        first = len(self.calls) + len(self.failures)
        results = await asyncio.gather(
            *(self._open(i) for i in range(first, first + n - len(self.calls))),
            return_exceptions=True,
        )
        errors = []
        for result in results:
            if isinstance(result, RecordedCall):
                self.calls.append(result)
            else:
                errors.append(repr(result))
        self.failures += errors
        return {
            "calls": len(self.calls),
            "setup_s": round(time.monotonic() - started, 3),
            "failed": len(errors),
            "errors": errors[:5],
            "call_ids": [c.call_id for c in self.calls],
        }

    def tick(self, tick: int, payloads: tuple[bytes, bytes]) -> None:
        self.rtp.tick(tick, payloads)

    def figures(self) -> dict[str, Any]:
        return {
            "packets_sent": self.rtp.sent,
            "send_errors": self.rtp.send_errors,
            "server_requests": dict(self.sip.server_requests),
        }

    async def _bye(self, call: RecordedCall) -> bool:
        async with self.semaphore:
            try:
                response = await self.sip.transact("BYE", call.dialog, tries=4)
            except SetupFailed:
                return False
            return response.status == 200

    async def aclose(self) -> dict[str, Any]:
        """Stop the media, end every dialog with a BYE; how many the server confirmed."""
        self.rtp.remove_all()
        self.sip.confirmed.clear()
        done = await asyncio.gather(*(self._bye(c) for c in self.calls))
        self.rtp.close()
        await self.sip.__aexit__(None, None, None)
        return {"byes": len(done), "byes_ok": sum(done)}

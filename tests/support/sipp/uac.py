"""A minimal SIPREC recording client in Python, for what sipp cannot send.

sipp has no way to key SRTP from an ``a=crypto`` line or to send deliberately broken
messages; this client does both, over one UDP socket (RFC 3261 §18), and plays each leg's
RTP or SRTP from the test. It is just enough of a user agent client for a test: requests go
out once (loopback does not lose datagrams), responses are matched to their request by
Call-ID and CSeq, a non-2xx final response to an INVITE is ACKed in its transaction (same
branch, §17.1.1.3) and a 2xx in a new one (§13.2.2.4).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import pylibsrtp

from tests.support.sipp.bodies import AnsweredStream, parse_answer

SRTP_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


@dataclass(frozen=True)
class SipResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, method); number -1 when the server echoed a CSeq that is no number."""
        number, _, method = self.header("CSeq").partition(" ")
        return (int(number) if number.isdigit() else -1), method.strip().upper()

    @property
    def to_tag(self) -> str:
        for param in self.header("To").split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.lower() == "tag":
                return value
        return ""

    @property
    def contact_uri(self) -> str:
        contact = self.header("Contact")
        return contact[contact.find("<") + 1 : contact.find(">")] if "<" in contact else contact.split(";")[0]

    def streams(self) -> list[AnsweredStream]:
        return parse_answer(self.body)[1]


def parse_response(data: bytes) -> SipResponse | None:
    """A SIP response, or ``None`` for anything else (a request, garbage)."""
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return SipResponse(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)


@dataclass
class Dialog:
    """One recording session as the client sees it."""

    call_id: str
    from_tag: str
    to_tag: str = ""
    remote_target: str = ""
    cseq: int = 1
    answer: SipResponse | None = None


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.responses: dict[tuple[str, int, str], list[SipResponse]] = defaultdict(list)
        self.changed = asyncio.Event()
        self.unparsed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        response = parse_response(data)
        if response is None:
            self.unparsed += 1  # e.g. a BYE or UPDATE from the server: not this client's business
            return
        number, method = response.cseq
        self.responses[(response.header("Call-ID"), number, method)].append(response)
        self.changed.set()


class SiprecClient:
    """A recording client bound to 127.0.0.1 (an allowed source in the tests)."""

    def __init__(self, server: tuple[str, int], *, user: str = "src") -> None:
        self.server = server
        self.user = user
        self.inbox = _Inbox()
        self.port = 0

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self.inbox, local_addr=("127.0.0.1", 0))
        assert self.inbox.transport is not None
        self.port = self.inbox.transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.inbox.transport is not None:
            self.inbox.transport.close()

    # --- sending -------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        assert self.inbox.transport is not None
        self.inbox.transport.sendto(data, self.server)

    def request_text(
        self,
        method: str,
        dialog: Dialog,
        *,
        uri: str = "",
        branch: str = "",
        cseq: int | None = None,
        headers: Sequence[str] = (),
        content_type: str = "",
        body: str = "",
    ) -> bytes:
        """A request as bytes: ``body`` lines may end in ``\\n`` (sent as CRLF)."""
        host, port = self.server
        payload = body.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        to_tag = f";tag={dialog.to_tag}" if dialog.to_tag else ""
        lines = [
            f"{method} {uri or dialog.remote_target or f'sip:srs@{host}:{port}'} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch or 'z9hG4bK' + secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@127.0.0.1>;tag={dialog.from_tag}",
            f"To: <sip:srs@{host}:{port}>{to_tag}",
            f"Call-ID: {dialog.call_id}",
            f"CSeq: {dialog.cseq if cseq is None else cseq} {method}",
            f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>;+sip.src",
            *headers,
        ]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(payload)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

    async def final_response(self, call_id: str, cseq: int, method: str, timeout: float = 5.0) -> SipResponse:
        """The first final (>= 200) response to (Call-ID, CSeq, method); fails loudly."""
        key = (call_id, cseq, method.upper())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            finals = [r for r in self.inbox.responses.get(key, []) if r.status >= 200]
            if finals:
                return finals[0]
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(r.status, r.reason) for r in self.inbox.responses.get(key, [])]
                raise AssertionError(f"no final response to {method} {call_id} CSeq {cseq} in {timeout}s (saw {seen})")
            self.inbox.changed.clear()
            try:
                await asyncio.wait_for(self.inbox.changed.wait(), remaining)
            except TimeoutError:
                pass

    def responses(self, call_id: str, cseq: int, method: str) -> list[SipResponse]:
        return list(self.inbox.responses.get((call_id, cseq, method.upper()), []))

    # --- requests --------------------------------------------------------------------------

    def new_dialog(self) -> Dialog:
        return Dialog(call_id=f"{secrets.token_hex(8)}@127.0.0.1", from_tag=secrets.token_hex(4))

    async def invite(
        self,
        dialog: Dialog,
        *,
        body: str,
        content_type: str,
        headers: Sequence[str] = ("Require: siprec",),
        timeout: float = 5.0,
    ) -> SipResponse:
        """Send an INVITE (initial or re-INVITE) and ACK its final response."""
        branch = "z9hG4bK" + secrets.token_hex(8)
        cseq = dialog.cseq
        self.send_raw(self.request_text("INVITE", dialog, branch=branch, headers=headers, content_type=content_type, body=body))
        response = await self.final_response(dialog.call_id, cseq, "INVITE", timeout)
        if 200 <= response.status < 300:
            if not dialog.to_tag:
                dialog.to_tag = response.to_tag
                dialog.remote_target = response.contact_uri
            dialog.answer = response
            self.send_raw(self.request_text("ACK", dialog, cseq=cseq))
        else:
            # The ACK of a non-2xx is part of the INVITE transaction: its branch, its URI.
            failed = Dialog(dialog.call_id, dialog.from_tag, response.to_tag, dialog.remote_target)
            self.send_raw(self.request_text("ACK", failed, branch=branch, cseq=cseq))
        dialog.cseq += 1
        return response

    async def bye(self, dialog: Dialog) -> SipResponse:
        cseq = dialog.cseq
        dialog.cseq += 1
        self.send_raw(self.request_text("BYE", dialog, cseq=cseq))
        return await self.final_response(dialog.call_id, cseq, "BYE")

    async def options(self) -> SipResponse:
        probe = self.new_dialog()
        self.send_raw(self.request_text("OPTIONS", probe, headers=["Accept: application/sdp"]))
        return await self.final_response(probe.call_id, 1, "OPTIONS")


# --- media ---------------------------------------------------------------------------------


def srtp_protector(suite: str, key_salt: bytes) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key_salt, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=SRTP_PROFILES[suite]
    )
    return pylibsrtp.Session(policy)


@dataclass
class LegSender:
    """One leg's packets to one port, each optionally protected (SRTP)."""

    port: int
    packets: list[bytes]
    protect: pylibsrtp.Session | None = None
    host: str = "127.0.0.1"
    sent: int = 0
    extra: list[bytes] = field(default_factory=list)  # datagrams to slip in between (garbage...)


async def send_legs(legs: Sequence[LegSender], *, interval: float = 0.02) -> None:
    """Send every leg's packets side by side, one per leg per ``interval`` (paced like a
    phone, not a synchronisation), in a task the caller can cancel."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    try:
        start = loop.time()
        for index in range(max(len(leg.packets) for leg in legs)):
            for leg in legs:
                if index < len(leg.packets):
                    packet = leg.packets[index]
                    if leg.protect is not None:
                        packet = leg.protect.protect(packet)
                    transport.sendto(packet, (leg.host, leg.port))
                    leg.sent += 1
                while leg.extra:
                    transport.sendto(leg.extra.pop(0), (leg.host, leg.port))
            await asyncio.sleep(max(0.0, start + (index + 1) * interval - loop.time()))
    finally:
        transport.close()

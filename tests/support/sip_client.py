"""A small SIPREC recording client for tests: SIP over UDP or TCP, RTP/SRTP senders.

Written from RFC 3261 / RFC 7866, independently of the server's parser: messages are
built as text and responses read with a few regular expressions.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

BOUNDARY = "live-test-boundary"

METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="c2Vzc2lvbjE=">
    <sipSessionID>abc123;remote=def456</sipSessionID>
  </session>
  <participant participant_id="cGFydDE=">
    <nameID aor="sip:{agent}@pbx.example.com"><name>Agent</name></nameID>
  </participant>
  <participant participant_id="cGFydDI=">
    <nameID aor="sip:+4930123456@carrier.example.com"><name>Caller</name></nameID>
  </participant>
  <stream stream_id="c3RyMQ==" session_id="c2Vzc2lvbjE="><label>{agent_label}</label></stream>
  <stream stream_id="c3RyMg==" session_id="c2Vzc2lvbjE="><label>{caller_label}</label></stream>
  <participantstreamassoc participant_id="cGFydDE=">
    <send>c3RyMQ==</send><recv>c3RyMg==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="cGFydDI=">
    <send>c3RyMg==</send><recv>c3RyMQ==</recv>
  </participantstreamassoc>
</recording>
"""


def sdp_offer(
    port: int,
    *,
    labels: tuple[str, str] = ("1", "2"),
    codecs: str = "0 8",
    direction: str = "sendonly",
    proto: str = "RTP/AVP",
    crypto: tuple[str, str] | None = None,
    version: int = 1,
) -> str:
    lines = [
        "v=0",
        f"o=SBC 1000 {version} IN IP4 127.0.0.1",
        "s=SIPREC",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
    ]
    for index, label in enumerate(labels):
        lines += [f"m=audio {port + 2 * index} {proto} {codecs} 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
                  "a=rtpmap:101 telephone-event/8000", f"a=label:{label}", f"a={direction}", "a=ptime:20"]
        if crypto is not None:
            lines.append(f"a=crypto:1 {crypto[0]} inline:{crypto[1]}")
    return "\r\n".join(lines) + "\r\n"


def multipart(sdp: str, metadata: str) -> str:
    return (
        f"--{BOUNDARY}\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n"
        f"--{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml\r\n"
        f"Content-Disposition: recording-session\r\n\r\n{metadata}\r\n--{BOUNDARY}--\r\n"
    )


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, list[str]]
    body: str

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower(), [])
        return values[0] if values else ""


def parse_response(data: bytes) -> Response | None:
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    match = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", lines[0])
    if not match:
        return None
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Response(int(match.group(1)), match.group(2), headers, body)


@dataclass
class Dialog:
    call_id: str
    from_tag: str
    to_tag: str = ""
    cseq: int = 1
    answer: str = ""
    ports: list[int] = field(default_factory=list)


class SipClient:
    """One recording client socket (UDP or TCP) on 127.0.0.1."""

    def __init__(self, host: str, port: int, transport: str = "udp") -> None:
        self.host, self.port, self.transport = host, port, transport
        self.responses: asyncio.Queue[Response] = asyncio.Queue()
        self.requests: asyncio.Queue[str] = asyncio.Queue()  # requests the server sent us (BYE)
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.local_port = 0

    async def __aenter__(self) -> SipClient:
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            client = self

            class Proto(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: Any) -> None:
                    client._incoming(data)

            self._udp, _ = await loop.create_datagram_endpoint(Proto, remote_addr=(self.host, self.port))
            self.local_port = self._udp.get_extra_info("sockname")[1]
        else:
            reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self.local_port = self._writer.get_extra_info("sockname")[1]
            self._reader_task = asyncio.create_task(self._read_stream(reader))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)

    async def _read_stream(self, reader: asyncio.StreamReader) -> None:
        buffer = b""
        while chunk := await reader.read(65536):
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                if len(rest) < length:
                    break
                self._incoming(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]

    def _incoming(self, data: bytes) -> None:
        response = parse_response(data)
        if response is not None:
            self.responses.put_nowait(response)
        else:
            self.requests.put_nowait(data.decode("utf-8", "replace"))

    def send_raw(self, data: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(data)
        else:
            assert self._writer is not None
            self._writer.write(data)

    def request(
        self,
        method: str,
        dialog: Dialog,
        *,
        body: str = "",
        content_type: str = "",
        extra: list[tuple[str, str]] | None = None,
        branch: str | None = None,
        cseq: int | None = None,
    ) -> str:
        branch = branch or "z9hG4bK" + secrets.token_hex(6)
        to = f"<sip:srs@{self.host}:{self.port}>" + (f";tag={dialog.to_tag}" if dialog.to_tag else "")
        lines = [
            f"{method} sip:srs@{self.host}:{self.port} SIP/2.0",
            f"Via: SIP/2.0/{self.transport.upper()} 127.0.0.1:{self.local_port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:src@127.0.0.1>;tag={dialog.from_tag}",
            f"To: {to}",
            f"Call-ID: {dialog.call_id}",
            f"CSeq: {cseq if cseq is not None else dialog.cseq} {method}",
            f"Contact: <sip:src@127.0.0.1:{self.local_port}>;+sip.src",
        ]
        for name, value in extra or []:
            lines.append(f"{name}: {value}")
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body.encode())}")
        message = "\r\n".join(lines) + "\r\n\r\n" + body
        self.send_raw(message.encode())
        return branch

    async def response(self, timeout: float = 10.0, *, final: bool = True) -> Response:
        """The next response (the next final one unless ``final`` is False)."""
        async with asyncio.timeout(timeout):
            while True:
                response = await self.responses.get()
                if response.status >= 200 or not final:
                    return response

    async def invite(
        self,
        dialog: Dialog,
        sdp: str,
        metadata: str | None = None,
        *,
        extra: list[tuple[str, str]] | None = None,
        ack: bool = True,
    ) -> Response:
        body, content_type = (multipart(sdp, metadata), f"multipart/mixed;boundary={BOUNDARY}") if metadata else (sdp, "application/sdp")
        headers = [("Require", "siprec"), ("Supported", "timer")] + list(extra or [])
        self.request("INVITE", dialog, body=body, content_type=content_type, extra=headers)
        response = await self.response()
        if response.status == 200:
            dialog.to_tag = re.search(r";tag=([^;>\s]+)", response.header("to")).group(1)  # type: ignore[union-attr]
            dialog.answer = response.body
            dialog.ports = [int(p) for p in re.findall(r"(?m)^m=audio (\d+)", response.body)]
            if ack:
                self.request("ACK", dialog)
        dialog.cseq += 1
        return response

    async def bye(self, dialog: Dialog) -> Response:
        self.request("BYE", dialog)
        dialog.cseq += 1
        return await self.response()


def rtp_packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, pt & 0x7F, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


async def send_rtp(
    port: int,
    payloads: list[bytes],
    *,
    pt: int = 0,
    ssrc: int = 0x1234,
    protect: Any = None,
    interval: float = 0.02,
    host: str = "127.0.0.1",
) -> None:
    """Send one leg in real time (paced like telephony, 20 ms apart)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=(host, port))
    try:
        start = loop.time()
        for index, payload in enumerate(payloads):
            packet = rtp_packet(pt, index, index * len(payload), ssrc, payload)
            transport.sendto(protect(packet) if protect else packet)
            delay = start + (index + 1) * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
    finally:
        transport.close()

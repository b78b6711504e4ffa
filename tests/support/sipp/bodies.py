"""What a SIPREC recording client (SRC) puts in its INVITE body (RFC 7866 §6, RFC 7865).

An offer is ``multipart/mixed``: an SDP with one ``m=audio`` per leg (``a=label``,
``a=sendonly``) and the ``application/rs-metadata+xml`` part (``Content-Disposition:
recording-session``) saying which participant sends on which stream. Three vendors' dialects
of that metadata are here, as found in their documentation:

* ``cisco`` (CUBE): RFC 7865 as published, ``urn:ietf:params:xml:ns:recording:1``,
  ``participant_id``/``stream_id`` attributes and ``participantstreamassoc``;
* ``oracle`` (Acme Packet SBC): the pre-RFC draft, ``urn:ietf:params:xml:ns:recording``
  (no ``:1``), ``id``/``session`` attributes, ``<send>``/``<recv>`` inside
  ``<participant>``, ten-digit stream labels, ``apkt:`` extension data;
* ``broadworks``: ``urn:ietf:params:xml:ns:siprec``, the draft's shape, the call's id, queue
  and consent as extension elements instead of SIP headers.

Every builder takes the host and ports as strings, so the same text serves sipp (which fills
in ``[local_ip]``, ``[media_port]``) and the Python client (real values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

BOUNDARY = "OSS-unique-boundary-42"
CODEC_PT = {"PCMU": 0, "PCMA": 8}
OTHER = {"PCMU": "PCMA", "PCMA": "PCMU"}


@dataclass(frozen=True)
class Party:
    aor: str
    name: str
    participant_id: str


@dataclass(frozen=True)
class Vendor:
    """One SBC's way of starting a recording session, and what the server should make of it."""

    name: str
    user_agent: str
    src_user: str  # the user part of the client's From and Contact
    labels: tuple[str, str]  # a=label of the first and second m=audio
    stream_ids: tuple[str, str]
    session_id: str
    agent_stream: int  # which m=audio carries the agent's voice
    agent: Party
    caller: Party
    metadata: Callable[[Vendor, str], str]  # (vendor, call id) -> XML
    headers: Callable[[str], list[str]]  # call id -> extra INVITE header lines
    settings: dict[str, str] = field(default_factory=dict)  # server settings for its rules
    agent_id: str = ""  # the agent id the server should derive
    call_id_given: bool = True  # whether the call id travels in a header/extension

    def senders(self) -> tuple[Party, Party]:
        """(who sends on the first stream, who sends on the second)."""
        return (self.agent, self.caller) if self.agent_stream == 0 else (self.caller, self.agent)


# --- SDP ---------------------------------------------------------------------------------


def sdp_offer(
    host: str,
    ports: Sequence[str],
    labels: Sequence[str],
    *,
    codec: str = "PCMU",
    direction: str = "sendonly",
    version: int = 1,
    proto: str = "RTP/AVP",
    crypto: Sequence[str] = (),
    extra_media: Sequence[str] = (),
) -> str:
    """An SRC's SDP: one ``m=audio`` per port, ``codec`` offered first, then the other G.711
    codec and telephone-events (as SBCs do). ``crypto`` gives one ``a=crypto`` line value per
    stream (RFC 4568) for ``RTP/SAVP``; ``extra_media`` adds whole m-sections as they are."""
    first, second = CODEC_PT[codec], CODEC_PT[OTHER[codec]]
    lines = [
        "v=0",
        f"o=SRC 20240514 {version} IN IP4 {host}",
        "s=SIPREC",
        f"c=IN IP4 {host}",
        "t=0 0",
    ]
    for index, (port, label) in enumerate(zip(ports, labels)):
        lines += [
            f"m=audio {port} {proto} {first} {second} 101",
            f"a=rtpmap:{first} {codec}/8000",
            f"a=rtpmap:{second} {OTHER[codec]}/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
        ]
        if crypto:
            lines.append(f"a=crypto:{crypto[index]}")
        lines += [f"a=label:{label}", f"a={direction}"]
    for section in extra_media:
        lines += section.splitlines()
    return "\n".join(lines) + "\n"


# --- metadata -------------------------------------------------------------------------------

TIME = "2024-05-14T09:30:00Z"


def cisco_metadata(vendor: Vendor, call_id: str) -> str:
    first, second = vendor.senders()
    s0, s1 = vendor.stream_ids
    parties = "".join(
        f'<participant participant_id="{p.participant_id}">\n'
        f'<nameID aor="{p.aor}">\n<name xml:lang="en">{p.name}</name>\n</nameID>\n'
        f"</participant>\n"
        f'<participantsessionassoc participant_id="{p.participant_id}" session_id="{vendor.session_id}">\n'
        f"<associate-time>{TIME}</associate-time>\n</participantsessionassoc>\n"
        for p in (first, second)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<recording xmlns="urn:ietf:params:xml:ns:recording:1">\n'
        "<datamode>complete</datamode>\n"
        f'<session session_id="{vendor.session_id}">\n'
        f"<sipSessionID>{call_id};remote=00000000000000000000000000000000</sipSessionID>\n"
        f"<start-time>{TIME}</start-time>\n"
        "</session>\n"
        f"{parties}"
        f'<stream stream_id="{s0}" session_id="{vendor.session_id}">\n<label>{vendor.labels[0]}</label>\n</stream>\n'
        f'<stream stream_id="{s1}" session_id="{vendor.session_id}">\n<label>{vendor.labels[1]}</label>\n</stream>\n'
        f'<participantstreamassoc participant_id="{first.participant_id}">\n'
        f"<send>{s0}</send>\n<recv>{s1}</recv>\n</participantstreamassoc>\n"
        f'<participantstreamassoc participant_id="{second.participant_id}">\n'
        f"<send>{s1}</send>\n<recv>{s0}</recv>\n</participantstreamassoc>\n"
        "</recording>\n"
    )


def oracle_metadata(vendor: Vendor, call_id: str) -> str:
    first, second = vendor.senders()
    s0, s1 = vendor.stream_ids
    session = vendor.session_id

    def participant(p: Party, send: str, recv: str) -> str:
        return (
            f'<participant id="{p.participant_id}" session="{session}">\n'
            f'<nameID aor="{p.aor}">\n<name>{p.name}</name>\n</nameID>\n'
            f"<send>{send}</send>\n<recv>{recv}</recv>\n"
            f"<associate-time>{TIME}</associate-time>\n</participant>\n"
        )

    def stream(stream_id: str, label: str) -> str:
        return (
            f'<stream id="{stream_id}" session="{session}">\n<label>{label}</label>\n'
            f"<mode>separate</mode>\n<associate-time>{TIME}</associate-time>\n</stream>\n"
        )

    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<recording xmlns='urn:ietf:params:xml:ns:recording'>\n"
        "<dataMode>complete</dataMode>\n"
        f'<session id="{session}">\n'
        f"<associate-time>{TIME}</associate-time>\n"
        '<extensiondata xmlns:apkt="http://acmepacket.com/siprec/extensiondata">\n'
        "<apkt:ucid>00FA080018803B51EDF247;encoding=hex</apkt:ucid>\n"
        "<apkt:callerOrig>true</apkt:callerOrig>\n"
        "</extensiondata>\n"
        "</session>\n"
        + participant(first, s0, s1)
        + participant(second, s1, s0)
        + stream(s0, vendor.labels[0])
        + stream(s1, vendor.labels[1])
        + "</recording>\n"
    )


def broadworks_metadata(vendor: Vendor, call_id: str) -> str:
    first, second = vendor.senders()
    s0, s1 = vendor.stream_ids
    session = vendor.session_id

    def participant(p: Party, send: str, recv: str) -> str:
        return (
            f'<participant id="{p.participant_id}" session="{session}">\n'
            f'<nameID aor="{p.aor}">\n<name>{p.name}</name>\n</nameID>\n'
            f"<send>{send}</send>\n<recv>{recv}</recv>\n</participant>\n"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<recording xmlns="urn:ietf:params:xml:ns:siprec">\n'
        "<dataMode>complete</dataMode>\n"
        f'<session id="{session}">\n<start-time>{TIME}</start-time>\n</session>\n'
        + participant(first, s0, s1)
        + participant(second, s1, s0)
        + f'<stream id="{s0}" session="{session}">\n<label>{vendor.labels[0]}</label>\n</stream>\n'
        + f'<stream id="{s1}" session="{session}">\n<label>{vendor.labels[1]}</label>\n</stream>\n'
        + '<extensiondata xmlns:bwext="http://schema.broadsoft.com/siprec/extension">\n'
        f"<bwext:callid>{call_id}</bwext:callid>\n"
        "<bwext:queue>sales</bwext:queue>\n"
        "<bwext:consent>granted</bwext:consent>\n"
        "</extensiondata>\n"
        "</recording>\n"
    )


def live_headers(call_id: str, queue: str = "billing", consent: str = "granted") -> list[str]:
    return [f"X-Live-Call-Id: {call_id}", f"X-Live-Queue: {queue}", f"X-Live-Consent: {consent}"]


VENDORS: dict[str, Vendor] = {
    "cisco": Vendor(
        name="cisco",
        user_agent="Cisco-SIPGateway/IOS-17.9.4a",
        src_user="cube",
        labels=("1", "2"),
        stream_ids=("ZJlYUC9kEeyjnMh6iqDtGg==", "ZJlYUC9kEeyjnsh6iqDtGg=="),
        session_id="ZJlYUC9kEeyjm8h6iqDtGg==",
        agent_stream=0,
        # The AoR's user part is an agent known to the user store: the first rule.
        agent=Party("sip:agent@10.20.0.5", "Alex Agent", "ZJlYUC9kEeyjn8h6iqDtGg=="),
        caller=Party("sip:+14155550100@10.10.0.1", "+14155550100", "ZJlYUC9kEeyjncH6iqDtGg=="),
        metadata=cisco_metadata,
        headers=live_headers,
        agent_id="agent",
    ),
    "oracle": Vendor(
        name="oracle",
        user_agent="Oracle ESBC SCZ9.1.0",
        src_user="sbc",
        labels=("1355189042", "1355189043"),
        stream_ids=("4JExXQRHRkQaybQRhzCNDg==", "SD2b0hNnQ+dEOaQNBeBLjw=="),
        session_id="gR3LeZHnRkOz1ot3rKKfmQ==",
        agent_stream=1,
        # Matched by LIVE_SIPREC_AGENT_AOR (the second rule); the call id is the SIP Call-ID.
        agent=Party("sip:7001@10.0.0.5", "Desk 7001", "x8QI9BcsRWZQ9rUbaGuw5g=="),
        caller=Party("sip:+14155550123@203.0.113.9", "+14155550123", "x8QI9BcsRWZQ9rUbaGuw5h=="),
        metadata=oracle_metadata,
        headers=lambda call_id: ["X-Live-Consent: granted"],
        settings={"siprec_agent_aor": r"^sip:7\d{3}@"},
        agent_id="7001",
        call_id_given=False,
    ),
    "broadworks": Vendor(
        name="broadworks",
        user_agent="BroadWorks",
        src_user="bwas",
        labels=("1", "2"),
        stream_ids=("bw-stream-a", "bw-stream-b"),
        session_id="bw-session-7734",
        agent_stream=0,
        # Neither AoR is known or matched: LIVE_SIPREC_AGENT_LABEL decides (the third rule).
        agent=Party("sip:2001@as.example.com", "Agent 2001", "bw-party-agent"),
        caller=Party("sip:+15551230000@as.example.com", "+15551230000", "bw-party-caller"),
        metadata=broadworks_metadata,
        headers=lambda call_id: [],
        settings={"siprec_agent_label": "1"},
        agent_id="2001",
    ),
}


# --- multipart ------------------------------------------------------------------------------


def multipart(parts: Sequence[tuple[str, str, str]], boundary: str = BOUNDARY) -> str:
    """``parts`` of (content type, extra header lines, text) as a ``multipart/mixed`` body
    (RFC 2046 §5.1.1), lines ending ``\\n`` (sipp and ``uac`` turn them into CRLF)."""
    out = []
    for content_type, extra, text in parts:
        out.append(f"--{boundary}\nContent-Type: {content_type}\n{extra}\n{text.rstrip(chr(10))}\n")
    return "".join(out) + f"--{boundary}--\n"


def offer_body(sdp: str, metadata: str, boundary: str = BOUNDARY) -> str:
    return multipart(
        [
            ("application/sdp", "", sdp),
            ("application/rs-metadata+xml", "Content-Disposition: recording-session\n", metadata),
        ],
        boundary,
    )


# --- what the recording server answers --------------------------------------------------------


@dataclass(frozen=True)
class AnsweredStream:
    """One ``m=`` section of an SDP answer, as far as a recording client cares."""

    kind: str
    port: int
    proto: str
    payload_types: tuple[int, ...]
    codec: str  # the rtpmap name of the first payload type ("" when none)
    direction: str
    label: str
    crypto: tuple[str, ...]


@dataclass
class _Section:
    kind: str
    port: int
    proto: str
    payload_types: list[int]
    rtpmap: dict[int, str] = field(default_factory=dict)
    direction: str = "sendrecv"
    label: str = ""
    crypto: list[str] = field(default_factory=list)

    def freeze(self) -> AnsweredStream:
        first = self.payload_types[0] if self.payload_types else None
        codec = "" if first is None else self.rtpmap.get(first, {0: "PCMU", 8: "PCMA"}.get(first, ""))
        return AnsweredStream(self.kind, self.port, self.proto, tuple(self.payload_types), codec,
                              self.direction, self.label, tuple(self.crypto))


def parse_answer(sdp: str) -> tuple[str, list[AnsweredStream]]:
    """(the session's connection address, its m= sections) from an SDP answer."""
    address = ""
    sections: list[_Section] = []
    for raw in sdp.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("c=") and not sections:
            address = line.split()[-1]
        elif line.startswith("m="):
            kind, port, proto, *fmts = line[2:].split()
            sections.append(_Section(kind, int(port), proto, [int(f) for f in fmts if f.isdigit()]))
        elif sections and line.startswith("a="):
            current = sections[-1]
            name, _, value = line[2:].partition(":")
            if name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                current.direction = name
            elif name == "label":
                current.label = value
            elif name == "crypto":
                current.crypto.append(value)
            elif name == "rtpmap":
                pt, _, encoding = value.partition(" ")
                current.rtpmap[int(pt)] = encoding.split("/")[0].upper()
    return address, [section.freeze() for section in sections]

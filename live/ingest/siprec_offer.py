"""What a SIPREC INVITE offers and what we answer: pure functions over parsed SIP and SDP.

Refusals are ``Refusal(status, reason)``: the dialog layer answers them as they are, so every
4xx/5xx says why (RFC 3261 §21: the reason phrase is for people).
"""

from __future__ import annotations

import secrets

from ..model import Codec
from ..types import LEGS, CallId, Consent
from .sink import CallAnnouncement
from .sip import (
    AnswerStream,
    Crypto,
    MediaDescription,
    RecordingMetadata,
    SessionDescription,
    SipRequest,
    build_answer,
    choose_codec,
    header_params,
    media_type,
    parse_metadata,
    parse_multipart,
    parse_sdp,
)
from .siprec_legs import LegAssignment
from .srtp import SrtpError, SrtpReceiver, receiver_for

SUPPORTED = ("siprec", "timer")
MIN_SE = 90  # RFC 4028 §4
MAX_LEGS = 2  # agent and caller; further streams (e.g. a mixed one) are declined


class Refusal(Exception):
    """Answer the request with ``status`` and ``reason``; nothing was created."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


def check_extensions(request: SipRequest) -> None:
    """RFC 3261 §8.2.2.3: 420 for a required extension we do not support (e.g. 100rel)."""
    required = [tag.strip().lower() for tag in request.headers.get_all("Require")]
    unsupported = [tag for tag in required if tag and tag not in SUPPORTED]
    if unsupported:
        raise Refusal(420, "Bad Extension", [("Unsupported", ", ".join(unsupported))])


def read_offer(request: SipRequest) -> tuple[SessionDescription, RecordingMetadata | None]:
    """The SDP offer and the recording metadata (RFC 7866 §8: ``multipart/mixed``)."""
    kind = media_type(request.headers.get("Content-Type"))
    if kind == "multipart/mixed":
        parts = parse_multipart(request.headers.get("Content-Type"), request.body)
        sdp = next((p for p in parts if media_type(p.content_type) == "application/sdp"), None)
        xml = next((p for p in parts if media_type(p.content_type) == "application/rs-metadata+xml"), None)
        if sdp is None:
            raise Refusal(415, "Unsupported Media Type: no SDP in the multipart body")
        return parse_sdp(sdp.body), parse_metadata(xml.body) if xml is not None else None
    if kind == "application/sdp":  # metadata may follow in a re-INVITE or never
        return parse_sdp(request.body), None
    raise Refusal(415, "Unsupported Media Type: multipart/mixed with SDP and recording metadata expected")


def usable_crypto(media: MediaDescription) -> Crypto | None:
    """The first offered ``a=crypto`` we can decrypt with (RFC 4568 §7.1.1: pick one)."""
    for crypto in media.crypto:
        try:
            receiver_for(crypto)
        except SrtpError:
            continue
        return crypto
    return None


def receivable_streams(offer: SessionDescription) -> tuple[list[int], Codec]:
    """Indexes of the audio streams we receive (at most two) and their common G.711 codec."""
    audio = [i for i, m in enumerate(offer.media) if m.kind == "audio" and m.port != 0]
    if not audio:
        raise Refusal(488, "Not Acceptable Here: no audio stream offered")
    chosen = audio[:MAX_LEGS]
    codecs = {choose_codec(offer.media[i]) for i in chosen}
    names = {c[1].upper() for c in codecs if c is not None}
    if None in codecs or not names <= {"PCMU", "PCMA"}:
        raise Refusal(488, "Not Acceptable Here: unknown codec, PCMU or PCMA only")
    if len(names) != 1:
        raise Refusal(488, "Not Acceptable Here: both streams must use one codec")
    for i in chosen:
        media = offer.media[i]
        if media.proto.upper().endswith("SAVP") and usable_crypto(media) is None:
            raise Refusal(488, "Not Acceptable Here: no supported SRTP crypto suite")
    return chosen, "PCMA" if names == {"PCMA"} else "PCMU"


def answer_sdp(
    offer: SessionDescription,
    ports: dict[int, int],
    codec: Codec,
    *,
    address: str,
    session_id: int,
    version: int,
) -> str:
    """One answered ``m=`` line per offered one (RFC 3264 §6): ``recvonly`` at our port for
    the streams in ``ports`` (``inactive`` while the client holds them), port 0 for the rest;
    for SRTP our own key under the offered tag and suite (RFC 4568 §7.1.2)."""
    streams: list[AnswerStream] = []
    for index, media in enumerate(offer.media):
        if index not in ports:
            streams.append(AnswerStream(0, None, codec, "inactive", media.label, None))
            continue
        chosen = choose_codec(media)
        direction = "inactive" if media.direction in ("inactive", "recvonly") else "recvonly"
        crypto = usable_crypto(media)
        ours = Crypto.from_key(crypto.tag, crypto.suite, secrets.token_bytes(30)) if crypto else None
        streams.append(AnswerStream(ports[index], chosen[0] if chosen else None, codec, direction, media.label, ours))
    return build_answer(offer, streams, address=address, session_id=session_id, session_version=version)


def session_timer(request: SipRequest) -> tuple[int, bool, list[tuple[str, str]]] | None:
    """RFC 4028 for our 2xx: (interval, whether we refresh, headers), or None without timer.

    The client's interval and refresher are honoured; a client that does not support the
    extension cannot refresh, so then we do (§9).
    """
    value = request.headers.get("Session-Expires")
    if not value:
        return None
    supported = [t.strip().lower() for t in request.headers.get_all("Supported") + request.headers.get_all("Require")]
    try:
        interval = int(value.partition(";")[0].strip())
    except ValueError:
        raise Refusal(400, "Bad Request: Session-Expires is not a number") from None
    if interval < MIN_SE:
        raise Refusal(422, "Session Interval Too Small", [("Min-SE", str(MIN_SE))])
    refresher = header_params(value).get("refresher", "uac").lower()
    if "timer" not in supported:
        refresher = "uas"
    headers = [("Session-Expires", f"{interval};refresher={refresher}")]
    if "timer" in supported:
        headers.append(("Require", "timer"))
    return interval, refresher == "uas", headers


def srtp_for(media: MediaDescription) -> SrtpReceiver | None:
    """The SDES-SRTP receiver for an ``RTP/SAVP`` stream keyed by the offerer's ``a=crypto``."""
    if not media.proto.upper().endswith("SAVP"):
        return None
    crypto = usable_crypto(media)
    if crypto is None:
        raise SrtpError("no supported SRTP crypto suite offered")
    return receiver_for(crypto)


def payload_types(media: MediaDescription) -> dict[int, str]:
    """Payload type → encoding as offered (static G.711 and CN types, then ``a=rtpmap``)."""
    types = {0: "PCMU", 8: "PCMA", 13: "CN"}
    for pt, name in media.rtpmap.items():
        types[pt] = name.split("/")[0].upper()
    return types


def announcement(assignment: LegAssignment, codec: Codec) -> CallAnnouncement:
    return CallAnnouncement(
        call_id=CallId(assignment.call_id),
        source="siprec",
        agent_id=assignment.agent_id,
        consent=assignment.consent or Consent.UNKNOWN,
        codec=codec,
        queue=assignment.queue,
        attributes=dict(assignment.attributes),
        legs=tuple(leg for leg in LEGS if leg in assignment.legs.values()),  # one stream: one leg
    )

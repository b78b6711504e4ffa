"""SIPREC session recording server (SRS, RFC 7866): SIP dialogs in, calls with two legs out.

A recording client (an SBC or PBX) forks a call to us with an INVITE carrying
``Require: siprec``, ``+sip.src`` in its Contact and a ``multipart/mixed`` body: an SDP offer
with one ``m=audio`` per leg (``a=label``, ``a=sendonly``) and the recording metadata
(RFC 7865) naming the participants and which stream carries whom. We answer one ``a=recvonly``
stream per offered one (labels kept, the first codec we forward, PCMU or PCMA: never
transcoded), receive RTP or SDES-SRTP on ports from ``LIVE_RTP_PORTS`` (second stream at the
first port + 2) and feed the ``CallSink`` like every other source.

What is handled: INVITE (100 Trying, 200 OK retransmitted over UDP until ACK, RFC 3261
§13.3.1.4), ACK, BYE, CANCEL (487 to a pending INVITE), OPTIONS (keepalive), re-INVITE and
UPDATE (hold with ``a=inactive``, resume, changed metadata, keys or remote ports), session
timers (RFC 4028: a session not refreshed in time ends, with a BYE), media timeout (no RTP
for ``LIVE_RTP_TIMEOUT_S`` ends the call everywhere), retransmitted requests (answered with
the response already sent). Refusals carry a reason: 403 unauthorised source, 401 digest,
415 no multipart, 488 no audio / unknown codec, 420 unsupported extension, 503 all ports busy.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..errors import Conflict, LiveError
from ..media.hub import CallMedia, LegSource
from ..model import Codec
from ..types import CallId, LegName
from .rtp import LegStats, RtpLegReceiver, silence
from .rtp_ports import PortsExhausted, RtpEndpoint, RtpPortPool
from .sink import CallAnnouncement, CallSink
from .siprec_legs import AgentRules, LegAssignment, assign_legs
from .srtp import SrtpError, SrtpReceiver
from .sip import (
    AnswerStream,
    Crypto,
    MediaDescription,
    RecordingMetadata,
    SessionDescription,
    SipError,
    SipMessage,
    SipRequest,
    SipResponse,
    build_answer,
    build_request,
    build_response,
    choose_codec,
    header_params,
    media_type,
    parse_metadata,
    parse_multipart,
    parse_sdp,
    tag_of,
    uri_of,
)
from .sip.digest import DigestAuthenticator

log = logging.getLogger(__name__)

T1 = 0.5  # RFC 3261 §17.1.1.1
T2 = 4.0
TRANSACTION_S = 64 * T1
SUPPORTED = ("siprec", "timer")
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"
MIN_SE = 90  # RFC 4028 §4
KEEPALIVE_S = 0.02  # a held call's silence, per 20 ms packet
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")


class SipPeer(Protocol):
    """Where a request came from and how to answer it (one per datagram source or stream)."""

    transport: str  # "udp" | "tcp" | "tls"
    address: tuple[str, int]

    @property
    def reliable(self) -> bool: ...

    def send(self, message: SipMessage) -> None: ...


class Refusal(Exception):
    """Answer the request with ``status`` and ``reason``; nothing was created."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


@dataclass
class SiprecCounters:
    invites: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    ended: dict[str, int] = field(default_factory=dict)
    retransmissions: int = 0

    def refuse(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1


@dataclass(eq=False)
class RecordingSession:
    """One SIPREC dialog: one call on our side."""

    sip_call_id: str
    local_tag: str
    remote_tag: str
    peer: SipPeer
    remote_uri: str  # the client's Contact: where our BYE goes
    from_header: str  # the client's From (our To in requests we send)
    to_header: str  # the client's To with our tag (our From)
    call_id: CallId
    codec: Codec
    endpoints: list[RtpEndpoint]
    labels: list[str]  # labels of the streams we receive, in offer order
    leg_of: dict[str, LegName]
    media: CallMedia | None = None
    confirmed: bool = False
    ended: bool = False
    held: bool = False
    sdp_version: int = 1
    sdp_session: int = 0
    answer: str = ""
    local_cseq: int = 0
    confirmed_at: float = 0.0
    refreshed_at: float = 0.0
    session_expires: int = 0
    we_refresh: bool = False
    invite_branch: str = ""
    retransmit: asyncio.TimerHandle | None = None
    keepalive: asyncio.TimerHandle | None = None
    stats: dict[LegName, LegStats] = field(default_factory=dict)


@dataclass
class _Pending:
    cancelled: bool = False


def _branch(message: SipMessage) -> str:
    via = message.headers.get("Via")
    return header_params(via).get("branch", "")


class SessionRecordingServer:
    """The SRS: answers SIP requests, owns the recording sessions and their RTP ports."""

    def __init__(
        self,
        sink: CallSink,
        pool: RtpPortPool,
        *,
        rtp_address: str,
        contact: Callable[[SipPeer], str],
        rules: AgentRules,
        known_agent: Callable[[str], bool],
        allowed: Callable[[str], bool],
        digest: DigestAuthenticator | None = None,
        rtp_timeout_s: float = 30.0,
        session_expires_s: int = 1800,
    ) -> None:
        self.sink = sink
        self.pool = pool
        self.rtp_address = rtp_address
        self.contact = contact
        self.rules = rules
        self.known_agent = known_agent
        self.allowed = allowed
        self.digest = digest
        self.rtp_timeout_s = rtp_timeout_s
        self.session_expires_s = session_expires_s
        self.sessions: dict[str, RecordingSession] = {}  # by SIP Call-ID
        self.pending: dict[str, _Pending] = {}  # INVITE branch -> its setup, until answered
        self.counters = SiprecCounters()
        self.closed_stats: dict[LegName, LegStats] = {"agent": LegStats(), "caller": LegStats()}
        self._answered: dict[tuple[str, str], tuple[SipResponse, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="siprec-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for session in list(self.sessions.values()):
            await self._end(session, "shutdown", send_bye=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- dispatch ----------------------------------------------------------------------

    def receive(self, message: SipMessage, peer: SipPeer) -> None:
        """A parsed message from a transport; answered now or in a task (never raises)."""
        if isinstance(message, SipResponse):
            return  # answers to our BYE/UPDATE: nothing to do
        key = (_branch(message), message.method)
        sent = self._answered.get(key)
        if sent is not None and message.method != "ACK":
            self.counters.retransmissions += 1
            peer.send(sent[0])
            return
        if not self.allowed(peer.address[0]):
            log.warning("SIPREC %s from %s refused: source not in LIVE_SIPREC_ALLOW", message.method, peer.address[0])
            self._reply(peer, message, 403, "Source not allowed to record here")
            return
        if message.method == "INVITE":
            if key[0] in self.pending:  # a retransmission while we set up
                peer.send(build_response(message, 100, "Trying"))
                return
            self.pending[key[0]] = _Pending()
            peer.send(build_response(message, 100, "Trying"))
            self.spawn(self._invite(message, peer), "siprec-invite")
        elif message.method == "ACK":
            self._ack(message)
        elif message.method == "CANCEL":
            self._cancel(message, peer)
        elif message.method == "BYE":
            self.spawn(self._bye(message, peer), "siprec-bye")
        elif message.method == "OPTIONS":
            self._reply(peer, message, 200, "OK", [("Accept", "application/sdp, multipart/mixed, application/rs-metadata+xml")])
        elif message.method == "UPDATE":
            self.spawn(self._update(message, peer), "siprec-update")
        else:
            self._reply(peer, message, 405, "Method Not Allowed")

    def _reply(
        self,
        peer: SipPeer,
        request: SipRequest,
        status: int,
        reason: str,
        headers: list[tuple[str, str]] | None = None,
        *,
        to_tag: str | None = None,
        body: bytes = b"",
        content_type: str = "",
    ) -> SipResponse:
        extra = [("Allow", ALLOW), ("Supported", ", ".join(SUPPORTED))] + list(headers or [])
        if status >= 300:
            self.counters.refuse(status)
        response = build_response(
            request, status, reason, to_tag=to_tag, headers=extra, body=body, content_type=content_type
        )
        if status >= 200:
            self._answered[(_branch(request), request.method)] = (response, time.monotonic() + TRANSACTION_S)
        peer.send(response)
        return response

    # --- INVITE ------------------------------------------------------------------------

    async def _invite(self, request: SipRequest, peer: SipPeer) -> None:
        branch = _branch(request)
        try:
            to_tag = tag_of(request.headers.get("To"))
            session = self.sessions.get(request.headers.get("Call-ID"))
            if to_tag:
                if session is None or session.local_tag != to_tag:
                    raise Refusal(481, "Call/Transaction Does Not Exist")
                await self._reinvite(session, request, peer)
            else:
                if session is not None:
                    raise Refusal(482, "Loop Detected")
                await self._new_session(request, peer, branch)
        except Refusal as refusal:
            self._reply(peer, request, refusal.status, refusal.reason, refusal.headers)
        except SipError as exc:
            self._reply(peer, request, exc.status, exc.message[:120])
        except Exception:  # task boundary: the client gets an answer, the server goes on
            log.exception("SIPREC INVITE failed")
            self._reply(peer, request, 500, "Server Internal Error")
        finally:
            self.pending.pop(branch, None)

    def _check_extensions(self, request: SipRequest) -> None:
        required = [tag.strip().lower() for tag in request.headers.get_all("Require")]
        unsupported = [tag for tag in required if tag and tag not in SUPPORTED]
        if unsupported:
            raise Refusal(420, "Bad Extension", [("Unsupported", ", ".join(unsupported))])

    def _authenticate(self, request: SipRequest) -> None:
        if self.digest is None:
            return
        if self.digest.verify(request.method, request.headers.get("Authorization")) is None:
            raise Refusal(401, "Unauthorized", [("WWW-Authenticate", self.digest.challenge())])

    def _body(self, request: SipRequest) -> tuple[SessionDescription, RecordingMetadata | None]:
        kind = media_type(request.headers.get("Content-Type"))
        if kind == "multipart/mixed":
            parts = parse_multipart(request.headers.get("Content-Type"), request.body)
            sdp = next((p for p in parts if media_type(p.content_type) == "application/sdp"), None)
            xml = next((p for p in parts if media_type(p.content_type) == "application/rs-metadata+xml"), None)
            if sdp is None:
                raise Refusal(415, "Unsupported Media Type: no SDP in the multipart body")
            return parse_sdp(sdp.body), parse_metadata(xml.body) if xml is not None else None
        if kind == "application/sdp":
            return parse_sdp(request.body), None
        raise Refusal(415, "Unsupported Media Type: multipart/mixed with SDP and recording metadata expected")

    def _streams(self, offer: SessionDescription) -> tuple[list[int], Codec]:
        """Indexes of the audio streams we receive (at most two) and their common codec."""
        audio = [i for i, m in enumerate(offer.media) if m.kind == "audio" and m.port != 0]
        if not audio:
            raise Refusal(488, "Not Acceptable Here: no audio stream offered")
        chosen = audio[:2]
        codecs = [choose_codec(offer.media[i]) for i in chosen]
        if any(c is None for c in codecs):
            raise Refusal(488, "Not Acceptable Here: unknown codec, PCMU or PCMA only")
        names = {c[1] for c in codecs if c is not None}
        if len(names) != 1:
            raise Refusal(488, "Not Acceptable Here: both streams must use one codec")
        codec = names.pop()
        if codec not in ("PCMU", "PCMA"):
            raise Refusal(488, "Not Acceptable Here: unknown codec, PCMU or PCMA only")
        for i in chosen:
            media = offer.media[i]
            if media.proto.upper().endswith("SAVP") and not _usable_crypto(media):
                raise Refusal(488, "Not Acceptable Here: no supported SRTP crypto suite")
        return chosen, codec  # type: ignore[return-value]

    async def _new_session(self, request: SipRequest, peer: SipPeer, branch: str) -> None:
        self.counters.invites += 1
        self._check_extensions(request)
        self._authenticate(request)
        offer, meta = self._body(request)
        chosen, codec = self._streams(offer)
        labels = [offer.media[i].label or str(i) for i in chosen]
        headers = {name.lower(): value for name, value in request.headers.items()}
        assignment = assign_legs(
            labels, meta, headers, request.headers.get("Call-ID"), self.rules, self.known_agent
        )
        try:
            endpoints = await self.pool.open_legs(len(chosen))
        except PortsExhausted:
            raise Refusal(503, "Service Unavailable: all RTP ports are busy", [("Retry-After", "5")]) from None
        session = RecordingSession(
            sip_call_id=request.headers.get("Call-ID"),
            local_tag=secrets.token_hex(8),
            remote_tag=tag_of(request.headers.get("From")),
            peer=peer,
            remote_uri=uri_of(request.headers.get("Contact")) or request.uri,
            from_header=request.headers.get("From"),
            to_header="",
            call_id=CallId(assignment.call_id),
            codec=codec,
            endpoints=endpoints,
            labels=labels,
            leg_of=assignment.legs,
            invite_branch=branch,
            sdp_session=secrets.randbelow(2**31),
        )
        try:
            session.media = await self.sink.call_started(_announcement(assignment, codec))
        except Conflict:
            self.pool.release(endpoints)
            raise Refusal(486, "Busy Here: this call is already being recorded") from None
        except LiveError as exc:
            self.pool.release(endpoints)
            raise Refusal(503, f"Service Unavailable: {exc.message}"[:120]) from None
        self.sessions[session.sip_call_id] = session
        try:
            self._attach_receivers(session, offer, chosen)
        except (SrtpError, SipError) as exc:
            await self._end(session, "refused", send_bye=False)
            raise Refusal(488, f"Not Acceptable Here: {exc.message}"[:120]) from None
        if self.pending[branch].cancelled:  # CANCEL came while we set up: 487, nothing left behind
            await self._end(session, "cancelled", send_bye=False)
            raise Refusal(487, "Request Terminated")
        timer_headers = self._session_timer(session, request)
        session.answer = self._answer(session, offer, chosen)
        response = self._reply(
            peer,
            request,
            200,
            "OK",
            [("Contact", f"<{self.contact(peer)}>"), *timer_headers],
            to_tag=session.local_tag,
            body=session.answer.encode(),
            content_type="application/sdp",
        )
        session.to_header = response.headers.get("To")
        session.confirmed_at = session.refreshed_at = time.monotonic()
        if not peer.reliable:
            self._retransmit(session, response, T1)
        log.info(
            "SIPREC call %s from %s: %d streams, %s, agent %r (%s)",
            session.call_id, peer.address[0], len(chosen), codec, assignment.agent_id or "unknown", assignment.decided_by,
        )

    def _attach_receivers(self, session: RecordingSession, offer: SessionDescription, chosen: list[int]) -> None:
        assert session.media is not None
        for endpoint, index, label in zip(session.endpoints, chosen, session.labels):
            leg = session.leg_of.get(label, "caller")
            media = offer.media[index]
            receiver = RtpLegReceiver(session.media.leg(leg).publish, codec=session.codec, payload_types=_payload_types(media))
            endpoint.set_receiver(receiver, _srtp_for(media))  # a new receiver continues the old one's timeline
            session.stats[leg] = endpoint.stats

    def _answer(self, session: RecordingSession, offer: SessionDescription, chosen: list[int]) -> str:
        streams: list[AnswerStream] = []
        ports = {index: endpoint.port for index, endpoint in zip(chosen, session.endpoints)}
        for index, media in enumerate(offer.media):
            if index not in ports:
                streams.append(AnswerStream(0, None, session.codec, "inactive", media.label, None))
                continue
            pt = choose_codec(media)
            direction = "inactive" if media.direction in ("inactive", "recvonly") else "recvonly"
            crypto = _usable_crypto(media)
            answer_crypto = Crypto.from_key(crypto.tag, crypto.suite, secrets.token_bytes(30)) if crypto else None
            streams.append(AnswerStream(ports[index], pt[0] if pt else None, session.codec, direction, media.label, answer_crypto))
        return build_answer(
            offer, streams, address=self.rtp_address, session_id=session.sdp_session, session_version=session.sdp_version
        )

    def _session_timer(self, session: RecordingSession, request: SipRequest) -> list[tuple[str, str]]:
        """RFC 4028: honour the offered interval and refresher; we ask the client to refresh."""
        value = request.headers.get("Session-Expires")
        supported = [t.strip().lower() for t in request.headers.get_all("Supported") + request.headers.get_all("Require")]
        if not value:
            return []
        interval_text, _, _rest = value.partition(";")
        try:
            interval = int(interval_text.strip())
        except ValueError:
            raise Refusal(400, "Bad Request: Session-Expires") from None
        if interval < MIN_SE:
            raise Refusal(422, "Session Interval Too Small", [("Min-SE", str(MIN_SE))])
        refresher = header_params(value).get("refresher", "uac").lower()
        if "timer" not in supported:
            refresher = "uas"
        session.session_expires = interval
        session.we_refresh = refresher == "uas"
        headers = [("Session-Expires", f"{interval};refresher={refresher}")]
        if "timer" in supported:
            headers.append(("Require", "timer"))
        return headers

    def _retransmit(self, session: RecordingSession, response: SipResponse, interval: float) -> None:
        """RFC 3261 §13.3.1.4: resend the 2xx over UDP until the ACK, for 64*T1."""
        if session.confirmed or session.ended or time.monotonic() - session.confirmed_at > TRANSACTION_S:
            return
        loop = asyncio.get_running_loop()

        def again() -> None:
            if not session.confirmed and not session.ended:
                session.peer.send(response)
                self._retransmit(session, response, min(interval * 2, T2))

        session.retransmit = loop.call_later(interval, again)

    def _ack(self, request: SipRequest) -> None:
        session = self.sessions.get(request.headers.get("Call-ID"))
        if session is not None and tag_of(request.headers.get("To")) == session.local_tag:
            session.confirmed = True
            if session.retransmit is not None:
                session.retransmit.cancel()
                session.retransmit = None

    def _cancel(self, request: SipRequest, peer: SipPeer) -> None:
        pending = self.pending.get(_branch(request))
        if pending is None:
            self._reply(peer, request, 481, "Call/Transaction Does Not Exist")
            return
        self._reply(peer, request, 200, "OK")
        pending.cancelled = True  # the INVITE task answers 487 and leaves nothing behind

    # --- in-dialog requests ------------------------------------------------------------

    def _in_dialog(self, request: SipRequest) -> RecordingSession:
        session = self.sessions.get(request.headers.get("Call-ID"))
        if session is None or session.ended or tag_of(request.headers.get("To")) != session.local_tag:
            raise Refusal(481, "Call/Transaction Does Not Exist")
        return session

    async def _reinvite(self, session: RecordingSession, request: SipRequest, peer: SipPeer) -> None:
        await self._modify(session, request, peer)
        session.confirmed = False
        session.confirmed_at = time.monotonic()
        response = self._answered[(_branch(request), request.method)][0]
        if not peer.reliable:
            self._retransmit(session, response, T1)

    async def _update(self, request: SipRequest, peer: SipPeer) -> None:
        try:
            session = self._in_dialog(request)
            await self._modify(session, request, peer)
        except Refusal as refusal:
            self._reply(peer, request, refusal.status, refusal.reason, refusal.headers)
        except SipError as exc:
            self._reply(peer, request, exc.status, exc.message[:120])

    async def _modify(self, session: RecordingSession, request: SipRequest, peer: SipPeer) -> None:
        """re-INVITE or UPDATE: a refresh, hold/resume, new keys or ports, new metadata."""
        session.refreshed_at = time.monotonic()
        timer_headers = self._session_timer(session, request)
        if not request.body:  # a session refresh without an offer (RFC 4028 §7.4)
            body = b"" if request.method == "UPDATE" else session.answer.encode()
            self._reply(
                peer, request, 200, "OK", [("Contact", f"<{self.contact(peer)}>"), *timer_headers],
                to_tag=session.local_tag, body=body, content_type="application/sdp" if body else "",
            )
            return
        offer, meta = self._body(request)
        chosen, codec = self._streams(offer) if any(m.port for m in offer.media) else ([], session.codec)
        if codec != session.codec:
            raise Refusal(488, "Not Acceptable Here: the codec may not change within a call")
        chosen = chosen[: len(session.endpoints)]
        if chosen:
            self._attach_receivers(session, offer, chosen)  # new keys, payload types, SSRCs
        held = not chosen or all(offer.media[i].direction in ("inactive", "recvonly") for i in chosen)
        self._set_held(session, held)
        if meta is not None:
            await self._metadata_changed(session, request, meta)
        session.sdp_version += 1
        session.answer = self._answer(session, offer, chosen)
        self._reply(
            peer, request, 200, "OK", [("Contact", f"<{self.contact(peer)}>"), *timer_headers],
            to_tag=session.local_tag, body=session.answer.encode(), content_type="application/sdp",
        )

    async def _metadata_changed(self, session: RecordingSession, request: SipRequest, meta: RecordingMetadata) -> None:
        headers = {name.lower(): value for name, value in request.headers.items()}
        fresh = assign_legs(session.labels, meta, headers, session.sip_call_id, self.rules, self.known_agent)
        await self.sink.consent_reported(session.call_id, fresh.consent)

    def _set_held(self, session: RecordingSession, held: bool) -> None:
        """On hold no RTP comes: listeners get G.711 silence so their tracks stay alive."""
        if held == session.held:
            return
        session.held = held
        log.info("SIPREC call %s %s", session.call_id, "on hold" if held else "resumed")
        if held:
            self._keepalive(session)
        elif session.keepalive is not None:
            session.keepalive.cancel()
            session.keepalive = None
            for endpoint in session.endpoints:
                endpoint.last_packet_ns = time.monotonic_ns()  # the media timeout starts afresh

    def _keepalive(self, session: RecordingSession) -> None:
        if not session.held or session.ended or session.media is None:
            return
        payload = silence(session.codec)
        for leg in set(session.leg_of.values()):
            source: LegSource = session.media.leg(leg)
            source.publish(payload)
        session.keepalive = asyncio.get_running_loop().call_later(KEEPALIVE_S, self._keepalive, session)

    async def _bye(self, request: SipRequest, peer: SipPeer) -> None:
        try:
            session = self._in_dialog(request)
        except Refusal as refusal:
            self._reply(peer, request, refusal.status, refusal.reason)
            return
        self._reply(peer, request, 200, "OK", to_tag=session.local_tag)
        await self._end(session, "bye", send_bye=False)

    # --- ends --------------------------------------------------------------------------

    async def _end(self, session: RecordingSession, why: str, *, send_bye: bool) -> None:
        """The one end path of a recording session: ports freed, call ended, counted."""
        if session.ended:
            return
        session.ended = True
        self.counters.ended[why] = self.counters.ended.get(why, 0) + 1
        for handle in (session.retransmit, session.keepalive):
            if handle is not None:
                handle.cancel()
        if self.sessions.get(session.sip_call_id) is session:
            del self.sessions[session.sip_call_id]
        self.pool.release(session.endpoints)  # publishes what the receivers still hold
        for leg, stats in session.stats.items():
            self.closed_stats[leg].add(stats)
        if send_bye:
            self._send_bye(session)
        if session.media is not None:
            try:
                await self.sink.call_ended(session.call_id)
            except LiveError as exc:
                log.error("could not end SIPREC call %s: %s", session.call_id, exc.message)
        log.info("SIPREC call %s ended (%s)", session.call_id, why)

    def _request(self, session: RecordingSession, method: str) -> SipRequest:
        """An in-dialog request of ours (BYE, a session refresh UPDATE), RFC 3261 §12.2.1.1."""
        session.local_cseq += 1
        via = f"SIP/2.0/{session.peer.transport.upper()} {self.rtp_address};branch=z9hG4bK{secrets.token_hex(8)};rport"
        return build_request(
            method,
            session.remote_uri,
            [
                ("Via", via),
                ("Max-Forwards", "70"),
                ("From", session.to_header),
                ("To", session.from_header),
                ("Call-ID", session.sip_call_id),
                ("CSeq", f"{session.local_cseq} {method}"),
                ("Contact", f"<{self.contact(session.peer)}>"),
            ],
        )

    def _send_bye(self, session: RecordingSession) -> None:
        try:
            session.peer.send(self._request(session, "BYE"))
        except OSError as exc:
            log.warning("could not send BYE for %s: %s", session.call_id, exc)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.sweep(time.monotonic())
            except Exception:  # task boundary
                log.exception("SIPREC sweep failed")

    async def sweep(self, now: float) -> None:
        """Media timeouts, expired session timers, our refreshes, old transactions."""
        self._answered = {k: v for k, v in self._answered.items() if v[1] > now}
        now_ns = int(now * 1e9)
        for session in list(self.sessions.values()):
            if session.ended:
                continue
            if session.session_expires:
                age = now - session.refreshed_at
                if session.we_refresh and age >= session.session_expires / 2:
                    session.refreshed_at = now
                    session.peer.send(self._request(session, "UPDATE"))
                elif not session.we_refresh and age > session.session_expires:
                    await self._end(session, "session-expired", send_bye=True)
                    continue
            if session.held:
                continue
            last = max([e.last_packet_ns for e in session.endpoints] + [int(session.confirmed_at * 1e9)])
            if now_ns - last > self.rtp_timeout_s * 1e9:
                log.warning("SIPREC call %s: no RTP for %ss, ending it", session.call_id, self.rtp_timeout_s)
                await self._end(session, "media-timeout", send_bye=True)


def _announcement(assignment: LegAssignment, codec: Codec) -> CallAnnouncement:
    return CallAnnouncement(
        call_id=CallId(assignment.call_id),
        source="siprec",
        agent_id=assignment.agent_id,
        consent=assignment.consent,
        codec=codec,
        queue=assignment.queue,
        attributes=dict(assignment.attributes),
    )


def _usable_crypto(media: MediaDescription) -> Crypto | None:
    return next((c for c in media.crypto if c.suite in SRTP_SUITES), None)


def _srtp_for(media: MediaDescription) -> SrtpReceiver | None:
    if not media.proto.upper().endswith("SAVP"):
        return None
    crypto = _usable_crypto(media)
    if crypto is None:
        raise SrtpError("no supported SRTP crypto suite offered")
    return SrtpReceiver(crypto.suite, crypto.key_salt)


def _payload_types(media: MediaDescription) -> dict[int, str]:
    types = {0: "PCMU", 8: "PCMA", 13: "CN"}
    for pt, name in media.rtpmap.items():
        types[pt] = name.split("/")[0].upper()
    return types

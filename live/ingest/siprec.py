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
from collections.abc import Callable

from ..errors import Conflict, LiveError
from ..media.hub import LegSource
from ..types import CallId, LegName
from .periodic import every
from .rtp import LegStats, RtpLegReceiver, silence
from .rtp_ports import PortsExhausted, RtpPortPool
from .sink import CallSink
from .sip import (
    RecordingMetadata,
    SessionDescription,
    SipError,
    SipMessage,
    SipRequest,
    SipResponse,
    build_request,
    build_response,
    header_params,
    tag_of,
    uri_of,
)
from .sip.digest import DigestAuthenticator
from .siprec_legs import AgentRules, assign_legs
from .siprec_offer import (
    SUPPORTED,
    Refusal,
    announcement,
    answer_sdp,
    check_extensions,
    payload_types,
    read_offer,
    receivable_streams,
    session_timer,
    srtp_for,
)
from .siprec_session import RecordingSession, SipPeer, SiprecCounters, _Pending
from .srtp import SrtpError

log = logging.getLogger(__name__)

T1 = 0.5  # RFC 3261 §17.1.1.1
T2 = 4.0
TRANSACTION_S = 64 * T1
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"
KEEPALIVE_S = 0.02  # a held call's silence, per 20 ms packet


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
        sweep = every(1.0, lambda: self.sweep(time.monotonic()), "SIPREC sweep")
        self._sweeper = asyncio.create_task(sweep, name="siprec-sweep")

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
        if message.method == "ACK":  # never answered (RFC 3261 §17.2.1, §13.3.1.4)
            self._ack(message)
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

    def _authenticate(self, request: SipRequest) -> None:
        if self.digest is None:
            return
        if self.digest.verify(request.method, request.headers.get("Authorization")) is None:
            raise Refusal(401, "Unauthorized", [("WWW-Authenticate", self.digest.challenge())])

    async def _new_session(self, request: SipRequest, peer: SipPeer, branch: str) -> None:
        self.counters.invites += 1
        check_extensions(request)
        self._authenticate(request)
        offer, meta = read_offer(request)
        chosen, codec = receivable_streams(offer)
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
            session.media = await self.sink.call_started(announcement(assignment, codec))
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
            receiver = RtpLegReceiver(session.media.leg(leg).publish, codec=session.codec, payload_types=payload_types(media))
            endpoint.set_receiver(receiver, srtp_for(media))  # a new receiver continues the old one's timeline
            session.stats[leg] = endpoint.stats

    def _answer(self, session: RecordingSession, offer: SessionDescription, chosen: list[int]) -> str:
        ports = {index: endpoint.port for index, endpoint in zip(chosen, session.endpoints)}
        return answer_sdp(
            offer, ports, session.codec, address=self.rtp_address, session_id=session.sdp_session, version=session.sdp_version
        )

    def _session_timer(self, session: RecordingSession, request: SipRequest) -> list[tuple[str, str]]:
        """RFC 4028: the interval and refresher the client asked for (we never ask to refresh)."""
        timer = session_timer(request)
        if timer is None:
            return []
        session.session_expires, session.we_refresh, headers = timer
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
        except Exception:  # task boundary: the client gets an answer, the server goes on
            log.exception("SIPREC UPDATE failed")
            self._reply(peer, request, 500, "Server Internal Error")

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
        offer, meta = read_offer(request)
        chosen, codec = receivable_streams(offer) if any(m.port for m in offer.media) else ([], session.codec)
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
        if fresh.consent is not None:  # a re-INVITE that does not mention consent keeps it
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
                if endpoint.receiver is not None:  # the silence moved the leg's timeline on
                    endpoint.receiver.resync()

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

"""Telephony ingest adapters: each turns a protocol into calls with an agent and a caller leg.

The contract every source follows (architecture decision 11), so that nothing after the
adapter knows which source a call came from:

1. Parse the protocol in a pure module here (strict parse, lenient accept, typed messages).
2. When a call's media begins, hand a ``CallAnnouncement`` to the ``CallSink`` (``sink.py``)
   and receive the call's ``CallMedia``: one ``LegSource`` per leg (``media.hub``).
3. Publish each leg as encoded 20 ms G.711 packets with ``LegSource.publish(payload, pts,
   arrived_ns)``: ``pts`` in 8 kHz RTP units, in order (the hub drops, and counts, a packet
   that would step a listener's timestamp back). G.711 is forwarded untouched; anything else is
   encoded once per leg (``media.pcm``), never per listener. Bursty sources are paced to real
   time (``media.pacer``).
4. Report consent changes with ``consent_reported`` and the end of the call, however it ends
   (goodbye message, socket closed, media timeout), with ``call_ended`` exactly once.

The server glue of a source (``live/server/ingest_*.py``) authenticates the sender, owns the
sockets or ports, and adds the source's counters to ``/metrics``.

| module | source |
|---|---|
| ``twilio`` | Twilio Media Streams (WebSocket), split streams included |
| ``joined`` | one call from several connections (split streams, one leg per socket) |
| ``siprec`` | SIPREC (RFC 7865/7866) session recording server: the dialogs |
| ``siprec_offer``, ``siprec_legs``, ``siprec_session`` | what an INVITE offers and we answer; agent and caller legs; dialog state |
| ``sip/`` | SIP messages, headers, multipart, SDP, recording metadata, digest, UDP/TCP/TLS transport |
| ``rtp``, ``srtp``, ``rtp_ports`` | RTP and SDES-SRTP receive per leg, the UDP port pool |
| ``rtp_calls`` | plain RTP announced over the API (Asterisk externalMedia, GStreamer, ffmpeg) |
| ``audiohook``, ``audiohook_session``, ``audiohook_calls``, ``httpsig`` | Genesys Cloud AudioHook v2 (WebSocket), RFC 9421 signatures |
| ``fork`` | L16 WebSocket forks: FreeSWITCH mod_audio_fork, jambonz listen, Vonage |
| ``audiosocket`` | Asterisk AudioSocket (TCP) |
"""

"""Baseline "naive aiortc": the server aiortc's own examples lead to, with live's HTTP shape.

Written the way ``examples/server`` and ``MediaRelay``'s documentation suggest, with nothing
tuned: the ingested μ-law is decoded once per leg into ``av.AudioFrame``s, each leg is a
``MediaStreamTrack`` shared through a ``MediaRelay``, and every listener gets
``relay.subscribe(track)`` per leg, which aiortc's ``RTCRtpSender`` encodes to PCMU per
listener (resampler + encoder in the default thread pool). The same load generator drives it:

* ``GET /ingest/twilio`` Twilio Media Streams WebSocket (connected, start, media, stop);
* ``POST /api/calls/{call_id}/listen`` ``{sdp, type, purpose}`` -> 201 ``{sdp, type,
  session_id, legs}``; ``DELETE /api/listens/{session_id}``; ``GET /api/calls``;
  ``GET /healthz``. No auth, no ledger: only the media path is compared.

Run: ``python -m tests.bench.naive_server --port PORT`` (binds 127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fractions
import json
import logging
import secrets

from aiohttp import WSMsgType, web

from tests.bench.loopback import loopback_only

loopback_only()

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

LEGS = ("agent", "caller")
TRACK_TO_LEG = {"outbound": "agent", "inbound": "caller"}
TIME_BASE = fractions.Fraction(1, 8000)
SOURCE_QUEUE = 10  # frames held while no listener reads a leg


class IngestTrack(MediaStreamTrack):
    """One leg of the call as decoded audio frames."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[av.AudioFrame | None] = asyncio.Queue(SOURCE_QUEUE)
        self.decoder = av.CodecContext.create("pcm_mulaw", "r")
        self.decoder.format = "s16"
        self.decoder.layout = "mono"
        self.decoder.sample_rate = 8000

    def feed(self, payload: bytes, pts: int) -> None:
        packet = av.Packet(payload)
        packet.pts = pts
        packet.time_base = TIME_BASE
        for frame in self.decoder.decode(packet):
            frame.pts = pts
            frame.time_base = TIME_BASE
            if self.queue.full():  # nobody is reading yet: keep the newest
                self.queue.get_nowait()
            self.queue.put_nowait(frame)

    def end(self) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def recv(self) -> av.AudioFrame:
        frame = await self.queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame


class Call:
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.tracks = {leg: IngestTrack() for leg in LEGS}
        self.relays = {leg: MediaRelay() for leg in LEGS}


class NaiveServer:
    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.peers: dict[str, RTCPeerConnection] = {}

    async def ingest(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=64 * 1024)
        await ws.prepare(request)
        call: Call | None = None
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                event = data.get("event")
                if event == "start":
                    call = Call(data["start"]["callSid"])
                    self.calls[call.call_id] = call
                elif event == "media" and call is not None:
                    media = data["media"]
                    leg = TRACK_TO_LEG[media.get("track", "inbound")]
                    call.tracks[leg].feed(
                        base64.b64decode(media["payload"]), int(media["timestamp"]) * 8
                    )
                elif event == "stop":
                    break
        finally:
            if call is not None:
                self.calls.pop(call.call_id, None)
                for track in call.tracks.values():
                    track.end()
        return ws

    async def listen(self, request: web.Request) -> web.Response:
        call = self.calls.get(request.match_info["call_id"])
        if call is None:
            raise web.HTTPNotFound(
                text='{"error": {"code": "unknown_call"}}', content_type="application/json"
            )
        body = await request.json()
        offer = RTCSessionDescription(sdp=body["sdp"], type=body.get("type", "offer"))
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        session_id = "ls-" + secrets.token_hex(8)
        self.peers[session_id] = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self.peers.pop(session_id, None)
                await pc.close()

        await pc.setRemoteDescription(offer)
        # The offer lists PCMU only, so every sender encodes PCMU (the examples' force_codec()
        # would do the same through setCodecPreferences).
        for leg in LEGS:
            pc.addTrack(call.relays[leg].subscribe(call.tracks[leg]))
        await pc.setLocalDescription(await pc.createAnswer())
        mids = [t.mid for t in pc.getTransceivers()]
        return web.json_response(
            {
                "sdp": pc.localDescription.sdp,
                "type": "answer",
                "session_id": session_id,
                "legs": [
                    {"leg": leg, "mid": mid, "audible": True, "reason": None}
                    for leg, mid in zip(LEGS, mids)
                ],
            },
            status=201,
        )

    async def stop_listen(self, request: web.Request) -> web.Response:
        pc = self.peers.pop(request.match_info["session_id"], None)
        if pc is None:
            raise web.HTTPNotFound()
        await pc.close()
        return web.json_response({"session_id": request.match_info["session_id"], "ended": True})

    async def list_calls(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": [{"call_id": c} for c in self.calls]})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def close_all(self, app: web.Application) -> None:
        await asyncio.gather(
            *(pc.close() for pc in list(self.peers.values())), return_exceptions=True
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/ingest/twilio", self.ingest)
        app.router.add_get("/api/calls", self.list_calls)
        app.router.add_post("/api/calls/{call_id}/listen", self.listen)
        app.router.add_delete("/api/listens/{session_id}", self.stop_listen)
        app.on_shutdown.append(self.close_all)
        return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(NaiveServer().app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()

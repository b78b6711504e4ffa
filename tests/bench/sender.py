"""One call on Twilio Media Streams: two legs, one 20 ms μ-law packet per leg every 20 ms.

Run as its own process so the call's timing does not depend on the load generator's event
loop: ``python -m tests.bench.sender --url ws://127.0.0.1:PORT/ingest/twilio --call CA-bench``.
It prints one JSON line when the stream has started, and one with its pacing figures when it
stops (SIGTERM/SIGINT, or after ``--max-seconds``). Each payload carries the marker of
``marker.py`` with the send time, taken just before the WebSocket frame is written.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import signal
import sys
import time

import aiohttp

from tests.bench.marker import AGENT, CALLER, encode_payload

# Twilio's "outbound" track is what the agent says, "inbound" what the caller says.
TRACKS = ((AGENT, "outbound"), (CALLER, "inbound"))
PACKET_S = 0.020


def start_message(call_id: str, stream_sid: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream_sid,
            "start": {
                "accountSid": "AC" + secrets.token_hex(16),
                "streamSid": stream_sid,
                "callSid": call_id,
                "tracks": ["inbound", "outbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                # consent granted: otherwise live gates the caller leg to silence (and the marker)
                "customParameters": {"agent": "agent-bench", "consent": "granted"},
            },
        }
    )


async def stream(
    url: str, call_id: str, max_seconds: float, stop: asyncio.Event, secret: str = ""
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    stream_sid = "MZ" + secrets.token_hex(16)
    late = 0
    worst_late_ms = 0.0
    chunk = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(
        url, headers={"X-Live-Ingest-Secret": secret} if secret else None
    ) as ws:
        await ws.send_str(
            json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        )
        await ws.send_str(start_message(call_id, stream_sid))
        print(json.dumps({"event": "started", "call_id": call_id}), flush=True)
        t0 = loop.time()
        max_chunks = int(max_seconds / PACKET_S)
        sequence = 2
        while chunk < max_chunks and not stop.is_set() and not ws.closed:
            lag = loop.time() - (t0 + chunk * PACKET_S)
            if lag > 0.005:
                late += 1
                worst_late_ms = max(worst_late_ms, lag * 1000)
            for leg, track in TRACKS:
                payload = base64.b64encode(encode_payload(leg, chunk, time.monotonic_ns())).decode()
                await ws.send_str(
                    f'{{"event":"media","sequenceNumber":"{sequence}","streamSid":"{stream_sid}",'
                    f'"media":{{"track":"{track}","chunk":"{chunk}","timestamp":"{chunk * 20}",'
                    f'"payload":"{payload}"}}}}'
                )
                sequence += 1
            chunk += 1
            delay = t0 + chunk * PACKET_S - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
        if not ws.closed:
            await ws.send_str(
                json.dumps(
                    {
                        "event": "stop",
                        "sequenceNumber": str(sequence),
                        "streamSid": stream_sid,
                        "stop": {},
                    }
                )
            )
    return {"chunks": chunk, "late_over_5ms": late, "worst_late_ms": round(worst_late_ms, 2)}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--call", default="CA-bench")
    parser.add_argument("--max-seconds", type=float, default=1200.0)
    parser.add_argument("--secret", default="", help="the server's LIVE_INGEST_SECRET")
    args = parser.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    figures = await stream(args.url, args.call, args.max_seconds, stop, args.secret)
    print(json.dumps({"event": "stopped", **figures}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

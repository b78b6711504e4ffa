"""Whether an ingest point counts: ``ok``, ``fail`` (the server's fault) or ``invalid``."""

from __future__ import annotations

from typing import Any

from tests.bench.verdict import LOAD_BUSY, LOAD_STALLED, MIN_PPS, NOISY

MAX_PPS = 51.0  # a generator that bursts above 50/s per leg is catching up, not pacing
MAX_INGEST_LAG_MS = 200.0  # the server fell this much further behind the sender in the window
SATURATED = 0.95  # server CPU (core fraction) at which a point fails: it is at its limit
SENDER_BUSY = 0.6  # share of the window the generator may spend sending (its CPU time)


def judge(point: dict[str, Any], target_ms: float) -> tuple[str, list[str]]:
    """``(status, reasons)`` of one point from its figures (see ``ingest.measure``)."""
    invalid: list[str] = []
    fail: list[str] = []
    load_core = point["gen_cpu_util"] + point.get("load_cpu_util", 0.0)
    if load_core > LOAD_BUSY:
        invalid.append(f"load core {100 * load_core:.0f}% busy > {100 * LOAD_BUSY:.0f}%")
    if point["gen_busy"] > SENDER_BUSY:
        invalid.append(f"generator spent {100 * point['gen_busy']:.0f}% of the window sending")
    pps = point["sender_pps_per_leg"]
    if not MIN_PPS <= pps <= MAX_PPS:
        invalid.append(f"generator sent {pps:.2f} packets/s per leg")
    if point["gen_send_errors"]:
        invalid.append(f"generator could not send {point['gen_send_errors']} packets")
    lag = point["ingest_lag_ms"]
    if lag is not None and lag < -MAX_INGEST_LAG_MS:
        # more ingested than sent: a backlog from before the window, not a steady state
        invalid.append(f"server caught up {-lag:.0f} ms of backlog from before the window")
    if point["load_socket_drops"]:
        invalid.append(
            f"kernel dropped {point['load_socket_drops']} datagrams for the load processes"
        )
    listen = point.get("listen")
    if listen is not None:
        if listen["load_loop_stalled_ms"] > LOAD_STALLED * point["window_s"] * 1000:
            invalid.append(f"listener loop stalled {listen['load_loop_stalled_ms']:.0f} ms in all")
        if listen["unprotect_errors"] or listen["foreign_packets"]:
            invalid.append("listeners got unexpected packets (SRTP errors or missing marker)")
    setup = point["setup"]
    if setup.get("failed"):
        fail.append(f"set-up: {setup['failed']} calls failed {setup.get('errors')}")
    if point["lost"]:
        fail.append(f"ingest loss: {point['lost']} {point['lost_detail']}")
    if lag is None or lag > MAX_INGEST_LAG_MS:
        fail.append(
            f"ingest fell {lag} ms behind the sender (ingested {point['ingest_ratio']} of it)"
        )
    if point["server_cpu_util"] >= SATURATED:
        # TCP (Twilio) hides a saturated server as growing lag rather than loss
        fail.append(f"server core saturated ({100 * point['server_cpu_util']:.0f}%)")
    if point["server_ended_calls"]:
        fail.append(f"server ended {point['server_ended_calls']} calls")
    if listen is not None:
        grow = point.get("listen_setup") or {}
        if grow.get("failed") or grow.get("silent"):
            fail.append(
                f"listeners: {grow.get('failed')} failed, {grow.get('silent')} silent {grow.get('errors')}"
            )
        if listen["lost"]:
            fail.append(
                f"listener loss: {listen['lost']} packets on {listen['streams_with_loss']} streams"
            )
        p99 = (listen.get("latency_ms") or {}).get("p99")
        if p99 is None or p99 > target_ms:
            fail.append(f"listener p99 {p99} ms > {target_ms:g} ms")
    others = max(point.get("other_cpu_server_core", 0.0), point.get("other_cpu_load_core", 0.0))
    if fail and not invalid and others > NOISY:
        invalid.append(f"other processes took {100 * others:.0f}% of a pinned core")
    return ("invalid" if invalid else ("fail" if fail else "ok")), invalid + fail

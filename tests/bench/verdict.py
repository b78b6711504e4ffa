"""Whether a measured point counts: ``ok``, ``fail`` (the server's fault) or ``invalid``."""

from __future__ import annotations

from typing import Any

LOAD_BUSY = 0.85  # above this the load generator's core is the bottleneck: the point is invalid
MIN_PPS = 49.0  # a stream (and the sender) must really carry ~50 packets/s
LOAD_STALLED = 0.005  # share of the window the load generator's loop may lag in all
NOISY = 0.25  # share of a pinned core other processes may take before a failure is not ours


def judge(
    point: dict[str, Any], stats: dict[str, Any], grow: dict[str, Any], target_ms: float
) -> tuple[str, list[str]]:
    """``(status, reasons)`` of one point from its figures, the load's stats and its setup."""
    window_s = point["window_s"]
    invalid, fail = [], []
    if point["load_cpu_util"] > LOAD_BUSY:
        invalid.append(
            f"load generator CPU {100 * point['load_cpu_util']:.0f}% > {100 * LOAD_BUSY:.0f}%"
        )
    if stats["load_loop_stalled_ms"] > LOAD_STALLED * window_s * 1000:
        # arrivals during a stall of the load generator's own loop are late by its length:
        # past this share of the window they can move the p99
        invalid.append(
            f"load generator loop stalled {stats['load_loop_stalled_ms']:.0f} ms in all"
            f" (worst {stats['load_loop_lag_ms']:.0f} ms)"
        )
    if point["udp_receive_errors"]:
        invalid.append(f"kernel dropped {point['udp_receive_errors']} datagrams on receive")
    if min(stats["sender_pps_per_leg"] or [0]) < MIN_PPS:
        invalid.append(f"sender below {MIN_PPS:g} packets/s per leg")
    if stats["unprotect_errors"] or stats["foreign_packets"]:
        invalid.append("unexpected packets (SRTP errors or missing marker)")
    if grow.get("failed") or grow.get("silent"):
        fail.append(
            f"setup: {grow.get('failed')} failed, {grow.get('silent')} silent {grow.get('errors')}"
        )
    if stats["lost"]:
        fail.append(
            f"loss: {stats['lost']} packets on {stats['streams_with_loss']} streams (min {stats['min_stream_pps']} pps)"
        )
    p99 = (stats.get("latency_ms") or {}).get("p99")
    if p99 is None or p99 > target_ms:
        fail.append(f"p99 {p99} ms > {target_ms:g} ms")
    others = max(point.get("other_cpu_server_core", 0.0), point.get("other_cpu_load_core", 0.0))
    if fail and not invalid and others > NOISY:
        # other tenants took a good share of one of our cores: not the server's failure
        invalid.append(f"other processes took {100 * others:.0f}% of a pinned core")
    return ("invalid" if invalid else ("fail" if fail else "ok")), invalid + fail


def decisive(tries: list[dict[str, Any]]) -> dict[str, Any]:
    """The try that stands for a point: any ``ok``, else a clean ``fail``, else the last one.

    An ``invalid`` retry says nothing about the server, so it cannot overturn a clean failure.
    """
    for status in ("ok", "fail"):
        for point in tries:
            if point["status"] == status:
                return point
    return tries[-1]

"""One ingest point's figures from the counters read at both ends of its window (pure).

``Snapshot`` is what the orchestrator reads at one end: the server's ``/metrics`` (parsed by
``parse_metrics``), the CPU of every process, the cores' busy time, the generator's counters,
the kernel's UDP drop counters. ``figures`` turns two of them into the point's fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_LABEL = re.compile(r'(\w+)="([^"]*)"')


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as ``{'name{label=value,…}': value}``, summed over the ``leg`` label."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        kept = ",".join(f"{k}={v}" for k, v in _LABEL.findall(labels) if k != "leg")
        key = f"{name}{{{kept}}}" if kept else name
        out[key] = out.get(key, 0.0) + float(value)
    return out


@dataclass(frozen=True)
class Snapshot:
    """One end of a window. ``t_ns`` is taken once the server has answered ``/metrics``, right
    before its CPU is read (a busy server may answer late: the window runs between answers);
    the generator's counters carry its own clock (``gen["time_ns"]``)."""

    metrics: dict[str, float]
    t_ns: int
    server_cpu: float
    gen_cpu: float
    load_cpu: float
    cores: list[float]  # busy seconds of the server core, the load core (when pinned)
    gen: dict[str, Any]  # the generator's ``stats`` reply
    socket_drops: int  # kernel drops on the server's UDP sockets
    socket_queued: int  # bytes waiting in them
    load_socket_drops: int  # kernel drops on the generator's and listeners' UDP sockets
    rcvbuf_errors: int  # machine-wide UDP RcvbufErrors (other tenants' sockets too)


def figures(s0: Snapshot, s1: Snapshot, calls: int, *, listening: bool) -> dict[str, Any]:
    """The measured fields of a point at ``calls`` calls (see tests/bench/README.md)."""
    m0, m1, g0, g1 = s0.metrics, s1.metrics, s0.gen, s1.gen

    def delta(key: str) -> int:
        return int(m1.get(key, 0.0) - m0.get(key, 0.0))

    window_s = (s1.t_ns - s0.t_ns) / 1e9
    gen_window_s = (g1["time_ns"] - g0["time_ns"]) / 1e9
    sent = g1["packets_sent"] - g0["packets_sent"]
    ingested = delta("live_packets_ingested_total")
    server_cpu = s1.server_cpu - s0.server_cpu
    gen_cpu = s1.gen_cpu - s0.gen_cpu
    # each rate over its own clock's window
    ratio = (ingested / window_s) / (sent / gen_window_s) if sent and gen_window_s else None
    socket_drops = s1.socket_drops - s0.socket_drops
    lost_detail = {
        "rtp_lost": delta("live_rtp_lost_total{source=siprec}"),
        "rtp_late": delta("live_rtp_late_total{source=siprec}"),
        "hub_late": delta("live_packets_late_total"),
        "twilio_dropped": delta("live_twilio_chunks_out_of_order_total{result=dropped}"),
        "frames_rejected": delta("live_ingest_frames_rejected_total"),
        "socket_drops": socket_drops,
    }
    requests0, requests1 = g0.get("server_requests", {}), g1.get("server_requests", {})
    server_ended = (
        sum(requests1.values())
        - sum(requests0.values())
        + g1.get("streams_closed", 0)
        - g0.get("streams_closed", 0)
    )
    point: dict[str, Any] = {
        "calls": calls,
        "legs": g1["legs"],
        "window_s": round(window_s, 3),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_util": round(server_cpu / window_s, 4),
        "ingested_pps": round(ingested / window_s, 1),
        "rtp_received_pps": round(delta("live_rtp_received_total{source=siprec}") / window_s, 1),
        "sent_pps": round(sent / gen_window_s, 1),
        "sender_pps_per_leg": round(sent / gen_window_s / max(1, g1["legs"]), 2),
        "ingest_ratio": round(ratio, 4) if ratio is not None else None,
        # how much further behind the sender the server fell during the window
        "ingest_lag_ms": round((1 - ratio) * window_s * 1000, 1) if ratio is not None else None,
        "us_per_packet_point": round(server_cpu / ingested * 1e6, 2) if ingested else None,
        "core_pct_per_call_point": round(100 * server_cpu / window_s / calls, 4),
        "lost": sum(lost_detail.values()),
        "lost_detail": lost_detail,
        "server_socket_drops": socket_drops,
        "server_socket_queued_bytes": s1.socket_queued,
        "load_socket_drops": s1.load_socket_drops - s0.load_socket_drops,
        "udp_rcvbuf_errors": s1.rcvbuf_errors - s0.rcvbuf_errors,
        "server_ended_calls": server_ended,
        "gen_cpu_util": round(gen_cpu / window_s, 4),
        "gen_us_per_packet": round(gen_cpu / sent * 1e6, 2) if sent else None,
        "gen_busy": round((g1["busy_s"] - g0["busy_s"]) / gen_window_s, 4),
        "gen_late_ticks": g1["late_ticks"] - g0["late_ticks"],
        "gen_worst_lag_ms": g1["worst_lag_ms"],
        "gen_ticks_per_s": round((g1["ticks"] - g0["ticks"]) / gen_window_s, 2),
        "gen_send_errors": g1["send_errors"] - g0["send_errors"],
        "gen_backlog_bytes": g1.get("backlog_bytes"),
    }
    ours_on_load = point["gen_cpu_util"]
    if listening:
        point["load_cpu_util"] = round((s1.load_cpu - s0.load_cpu) / window_s, 4)
        point["delivered_pps"] = round(delta("live_packets_delivered_total") / window_s, 1)
        point["listener_queue_drops"] = delta("live_packets_dropped_total")
        ours_on_load += point["load_cpu_util"]
    if s0.cores:
        # CPU other processes took on each pinned core: noise on a shared machine
        busy = [(b - a) / window_s for a, b in zip(s0.cores, s1.cores)]
        point["other_cpu_server_core"] = round(max(0.0, busy[0] - point["server_cpu_util"]), 3)
        point["other_cpu_load_core"] = round(max(0.0, busy[1] - ours_on_load), 3)
    return point

"""Turning measured points into the figures of PERFORMANCE.md, and printing them (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

SYSTEMS = {"A": "live", "B": "naive aiortc"}
SLOPE_MAX_CPU = 0.85  # points where the server core is busier than this say more about queueing


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares ``(slope, intercept)``; None with fewer than two distinct x."""
    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def slope_points(points: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in points if p["status"] == "ok" and p["server_cpu_util"] <= SLOPE_MAX_CPU]


def round_figures(points: list[dict[str, Any]], max_listeners: int) -> dict[str, Any]:
    """The figures of one round of one system (its step-up and bisection points)."""
    usable = slope_points(points)
    cpu = fit_line([p["packets_per_s"] for p in usable], [p["server_cpu_util"] for p in usable])
    load = fit_line([p["packets_per_s"] for p in usable], [p["load_cpu_util"] for p in usable])
    rss = fit_line(
        [float(p["listeners"]) for p in usable], [float(p["server_rss_kib"]) for p in usable]
    )
    ok = [p["listeners"] for p in points if p["status"] == "ok"]
    bad = [p for p in points if p["status"] != "ok"]
    best = max(ok) if ok else 0
    above = [p for p in bad if p["listeners"] > best]
    limit = min(above, key=lambda p: p["listeners"]) if above else None
    return {
        "slope_points": len(usable),
        "us_per_packet": round(cpu[0] * 1e6, 2) if cpu else None,
        "fixed_cpu_ms_per_s": round(cpu[1] * 1e3, 2) if cpu else None,
        "rss_kib_per_listener": round(rss[0], 1) if rss else None,
        "load_us_per_packet": round(load[0] * 1e6, 2) if load else None,
        "max_listeners_ok": best,
        "max_streams_ok": 2 * best,
        "capacity_bounded": best
        >= max_listeners,  # stopped by the configured bound, not the server
        "first_failure": None
        if limit is None
        else {
            "listeners": limit["listeners"],
            "status": limit["status"],
            "reasons": limit["reasons"],
        },
    }


def median_or_none(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def summarize(
    rounds: dict[str, list[dict[str, Any]]],
    points: dict[str, list[dict[str, Any]]],
    listener_counts: Sequence[int],
) -> dict[str, Any]:
    """Medians over rounds per system, latency per listener count, and B/A ratios."""
    summary: dict[str, Any] = {}
    for system, figures in rounds.items():
        latency: dict[str, Any] = {}
        for n in listener_counts:
            at_n = [
                p
                for p in points[system]
                if p["listeners"] == n and p["status"] in ("ok", "fail") and p.get("latency_ms")
            ]
            if at_n:
                latency[str(n)] = {
                    "p50": median_or_none(p["latency_ms"]["p50"] for p in at_n),
                    "p99": median_or_none(p["latency_ms"]["p99"] for p in at_n),
                    "us_per_packet_point": median_or_none(p["us_per_packet_point"] for p in at_n),
                    "statuses": [p["status"] for p in at_n],
                }
        summary[system] = {
            "name": SYSTEMS[system],
            "rounds": len(figures),
            "us_per_packet": median_or_none(f["us_per_packet"] for f in figures),
            "us_per_packet_rounds": [f["us_per_packet"] for f in figures],
            "fixed_cpu_ms_per_s": median_or_none(f["fixed_cpu_ms_per_s"] for f in figures),
            "rss_kib_per_listener": median_or_none(f["rss_kib_per_listener"] for f in figures),
            "load_us_per_packet": median_or_none(f["load_us_per_packet"] for f in figures),
            # capacity: the best round; other tenants can only lower it, never raise it
            "max_streams_ok": max(f["max_streams_ok"] for f in figures) if figures else None,
            "max_streams_ok_rounds": [f["max_streams_ok"] for f in figures],
            "capacity_bounded": any(f["capacity_bounded"] for f in figures),
            "latency_by_listeners": latency,
        }
    if "A" in summary and "B" in summary:
        summary["ratios_B_over_A"] = ratios(summary["A"], summary["B"])
        # A stopped by the configured bound: its capacity is a lower bound, so B/A an upper one
        summary["ratios_B_over_A"]["max_streams_ok_is_upper_bound"] = bool(
            summary["A"]["capacity_bounded"] and not summary["B"]["capacity_bounded"]
        )
    return summary


def _ratio(b: float | None, a: float | None) -> float | None:
    return round(b / a, 2) if a and b is not None else None


def ratios(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "us_per_packet": _ratio(b["us_per_packet"], a["us_per_packet"]),
        "fixed_cpu_ms_per_s": _ratio(b["fixed_cpu_ms_per_s"], a["fixed_cpu_ms_per_s"]),
        "max_streams_ok": _ratio(b["max_streams_ok"], a["max_streams_ok"]),
        "rss_kib_per_listener": _ratio(b["rss_kib_per_listener"], a["rss_kib_per_listener"]),
    }
    for n, lat_b in b["latency_by_listeners"].items():
        lat_a = a["latency_by_listeners"].get(n)
        if lat_a:
            out[f"latency_p50_at_{n}"] = _ratio(lat_b["p50"], lat_a["p50"])
            out[f"latency_p99_at_{n}"] = _ratio(lat_b["p99"], lat_a["p99"])
            out[f"us_per_packet_point_at_{n}"] = _ratio(
                lat_b["us_per_packet_point"], lat_a["us_per_packet_point"]
            )
    return out


POINT_HEADER = (
    f"{'sys':<3} {'rnd':>3} {'kind':<6} {'lis':>4} {'strm':>4} {'status':<8} {'srvCPU%':>7} {'pkt/s':>6} "
    f"{'us/pkt':>7} {'lost':>5} {'minpps':>6} {'p50ms':>6} {'p99ms':>7} {'ldCPU%':>6} {'ld us/pkt':>9} {'ldlag':>5} {'other%':>6} {'setup s':>7}"
)


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def format_point(p: dict[str, Any]) -> str:
    latency = p.get("latency_ms") or {}
    others = [
        p[k] for k in ("other_cpu_server_core", "other_cpu_load_core") if p.get(k) is not None
    ]
    other = 100 * max(others) if others else None
    line = (
        f"{p['system']:<3} {p['round']:>3} {p['kind']:<6} {p['listeners']:>4} {p['streams']:>4} {p['status']:<8} "
        f"{_num(100 * p['server_cpu_util'], 7, 1)} {_num(p['packets_per_s'], 6, 0)} "
        f"{_num(p['us_per_packet_point'], 7, 1)} {p['lost']:>5} {_num(p['min_stream_pps'], 6, 1)} "
        f"{_num(latency.get('p50'), 6, 2)} {_num(latency.get('p99'), 7, 2)} "
        f"{_num(100 * p['load_cpu_util'], 6, 1)} {_num(p['load_us_per_packet'], 9, 1)} {_num(p.get('load_loop_lag_ms'), 5, 0)} "
        f"{_num(other, 6, 0)} {_num(p['setup_s'], 7, 2)}"
    )
    if p["reasons"]:
        line += "  " + "; ".join(p["reasons"])
    return line


def format_summary(
    summary: dict[str, Any], target_ms: float, listener_counts: Sequence[int]
) -> str:
    a, b = summary.get("A"), summary.get("B")
    r = summary.get("ratios_B_over_A", {})
    lines = []

    def row(label: str, key: str, unit_digits: int = 1) -> None:
        va = a.get(key) if a else None
        vb = b.get(key) if b else None
        lines.append(
            f"{label:<46} {_num(va, 10, unit_digits)} {_num(vb, 12, unit_digits)} {_num(r.get(key), 7, 2)}"
        )

    lines.append(
        f"{'figure (median over rounds unless noted)':<46} {'A live':>10} {'B naive':>12} {'B/A':>7}"
    )
    row("CPU per forwarded packet, slope (us)", "us_per_packet")
    row("fixed server CPU (ms per s)", "fixed_cpu_ms_per_s")
    label = f"max streams, 0 loss, p99 <= {target_ms:g} ms (best round)"

    def mark(s: dict[str, Any] | None) -> str:
        if s is None:
            return "-"
        return (">=" if s.get("capacity_bounded") else "") + str(s["max_streams_ok"])

    ratio = r.get("max_streams_ok")
    ratio_text = (
        "-"
        if ratio is None
        else ("<=" if r.get("max_streams_ok_is_upper_bound") else "") + f"{ratio:.2f}"
    )
    lines.append(f"{label:<46} {mark(a):>10} {mark(b):>12} {ratio_text:>7}")
    row("server RSS per listener (KiB)", "rss_kib_per_listener")
    row("load generator CPU per packet, slope (us)", "load_us_per_packet")
    for n in listener_counts:
        la = (a or {}).get("latency_by_listeners", {}).get(str(n))
        lb = (b or {}).get("latency_by_listeners", {}).get(str(n))
        if not la and not lb:
            continue
        for q in ("p50", "p99"):
            lines.append(
                f"{f'latency {q} at {n} listeners ({2 * n} streams, ms)':<46} {_num(la and la[q], 10, 2)} "
                f"{_num(lb and lb[q], 12, 2)} {_num(r.get(f'latency_{q}_at_{n}'), 7, 2)}"
            )
        lines.append(
            f"{f'CPU per packet at {n} listeners, incl. fixed (us)':<46} {_num(la and la['us_per_packet_point'], 10, 1)} "
            f"{_num(lb and lb['us_per_packet_point'], 12, 1)} {_num(r.get(f'us_per_packet_point_at_{n}'), 7, 2)}"
        )
    return "\n".join(lines)

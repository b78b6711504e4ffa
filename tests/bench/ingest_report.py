"""Ingest benchmark figures from measured points, and how they are printed (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.bench.report import SLOPE_MAX_CPU, _num, fit_line, median_or_none

MODES = {
    "siprec": "SIPREC, no listener",
    "siprec-listen": "SIPREC, 1 listener/call",
    "twilio": "Twilio, no listener",
}
BASE = "siprec"  # ratios are quoted against this mode


def round_figures(points: list[dict[str, Any]], top: int) -> dict[str, Any]:
    """The figures of one mode in one round; ``top`` is the largest call count it could reach."""
    usable = [p for p in points if p["status"] == "ok" and p["server_cpu_util"] <= SLOPE_MAX_CPU]
    per_call = fit_line([float(p["calls"]) for p in usable], [p["server_cpu_util"] for p in usable])
    per_packet = fit_line(
        [p["ingested_pps"] for p in usable], [p["server_cpu_util"] for p in usable]
    )
    generator = fit_line([p["sent_pps"] for p in usable], [p["gen_cpu_util"] for p in usable])
    ok = [p["calls"] for p in points if p["status"] == "ok"]
    best = max(ok) if ok else 0
    above = [p for p in points if p["status"] != "ok" and p["calls"] > best]
    limit = min(above, key=lambda p: p["calls"]) if above else None
    calls_per_core = None
    if per_call and per_call[0] > 0:
        calls_per_core = round((1.0 - per_call[1]) / per_call[0], 0)
    return {
        "slope_points": len(usable),
        "us_per_packet": round(per_packet[0] * 1e6, 2) if per_packet else None,
        "core_pct_per_call": round(per_call[0] * 100, 4) if per_call else None,
        "fixed_cpu_ms_per_s": round(per_call[1] * 1e3, 1) if per_call else None,
        "calls_per_core": calls_per_core,
        "gen_us_per_packet": round(generator[0] * 1e6, 2) if generator else None,
        "max_calls_ok": best,
        "bounded": best >= top,  # stopped by the step list, not by a failure
        "first_failure": None
        if limit is None
        else {"calls": limit["calls"], "status": limit["status"], "reasons": limit["reasons"]},
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def summarize(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians over rounds per mode (capacity: the best round), and ratios to SIPREC."""
    summary: dict[str, Any] = {}
    for mode, figures in rounds.items():
        summary[mode] = {
            "name": MODES[mode],
            "rounds": len(figures),
            **{
                key: median_or_none(f[key] for f in figures)
                for key in (
                    "us_per_packet",
                    "core_pct_per_call",
                    "fixed_cpu_ms_per_s",
                    "calls_per_core",
                    "gen_us_per_packet",
                )
            },
            "calls_per_core_rounds": [f["calls_per_core"] for f in figures],
            "us_per_packet_rounds": [f["us_per_packet"] for f in figures],
            # other tenants can only lower capacity: the best round stands
            "max_calls_ok": max((f["max_calls_ok"] for f in figures), default=None),
            "max_calls_ok_rounds": [f["max_calls_ok"] for f in figures],
            "bounded": any(f["bounded"] for f in figures),
        }
    base = summary.get(BASE)
    if base:
        for mode, figures in summary.items():
            if mode != BASE:
                figures["ratio_to_siprec"] = {
                    key: _ratio(figures[key], base[key])
                    for key in ("us_per_packet", "core_pct_per_call", "calls_per_core")
                }
        listen = summary.get("siprec-listen")
        if (
            listen
            and listen["core_pct_per_call"] is not None
            and base["core_pct_per_call"] is not None
        ):
            listen["listener_core_pct"] = round(
                listen["core_pct_per_call"] - base["core_pct_per_call"], 4
            )
    return summary


POINT_HEADER = (
    f"{'mode':<13} {'rnd':>3} {'kind':<5} {'calls':>5} {'status':<7} {'srvCPU%':>7} {'in/s':>6} {'ratio':>6} "
    f"{'us/pkt':>6} {'%c/call':>7} {'lost':>4} {'sdrop':>5} {'rcvErr':>6} {'pps/leg':>7} {'genCPU%':>7} "
    f"{'gen us':>6} {'genlag':>6} {'other%':>6} {'ldCPU%':>6} {'dlv/s':>6} {'p99ms':>6}"
)


def format_point(p: dict[str, Any]) -> str:
    listen = p.get("listen") or {}
    others = [
        p[k] for k in ("other_cpu_server_core", "other_cpu_load_core") if p.get(k) is not None
    ]
    line = (
        f"{p['mode']:<13} {p['round']:>3} {p['kind']:<5} {p['calls']:>5} {p['status']:<7} "
        f"{_num(100 * p['server_cpu_util'], 7, 1)} {_num(p['ingested_pps'], 6, 0)} {_num(p['ingest_ratio'], 6, 3)} "
        f"{_num(p['us_per_packet_point'], 6, 1)} {_num(p['core_pct_per_call_point'], 7, 3)} {p['lost']:>4} "
        f"{p['server_socket_drops']:>5} {p['udp_rcvbuf_errors']:>6} {_num(p['sender_pps_per_leg'], 7, 2)} "
        f"{_num(100 * p['gen_cpu_util'], 7, 1)} {_num(p['gen_us_per_packet'], 6, 1)} {_num(p['gen_worst_lag_ms'], 6, 1)} "
        f"{_num(100 * max(others) if others else None, 6, 0)} "
        f"{_num(100 * p['load_cpu_util'] if 'load_cpu_util' in p else None, 6, 1)} "
        f"{_num(p.get('delivered_pps'), 6, 0)} {_num((listen.get('latency_ms') or {}).get('p99'), 6, 1)}"
    )
    if p["reasons"]:
        line += "  " + "; ".join(p["reasons"])
    return line


def format_summary(summary: dict[str, Any], modes: Sequence[str], target: int) -> str:
    lines = [
        f"{'figure (median over rounds unless noted)':<44}"
        + "".join(f"{MODES[m]:>25}" for m in modes)
    ]

    def row(label: str, key: str, digits: int, ratio: bool = False) -> None:
        cells = []
        for mode in modes:
            figures = summary.get(mode, {})
            cell = _num(figures.get(key), 1, digits).strip()
            r = (figures.get("ratio_to_siprec") or {}).get(key) if ratio else None
            cells.append(f"{cell + (f' (x{r:.2f})' if r is not None else ''):>25}")
        lines.append(f"{label:<44}" + "".join(cells))

    row("server CPU per ingested packet, slope (us)", "us_per_packet", 2, ratio=True)
    row("server CPU per call, slope (% of a core)", "core_pct_per_call", 3, ratio=True)
    row("fixed server CPU, intercept (ms per s)", "fixed_cpu_ms_per_s", 1)
    row("calls per core, by the slope", "calls_per_core", 0, ratio=True)
    cells = []
    for mode in modes:
        figures = summary.get(mode, {})
        value = figures.get("max_calls_ok")
        text = "-" if value is None else (">=" if figures.get("bounded") else "") + str(value)
        cells.append(f"{text:>25}")
    lines.append(f"{'most calls measured with 0 loss (best round)':<44}" + "".join(cells))
    row("generator CPU per packet sent, slope (us)", "gen_us_per_packet", 2)
    listen = summary.get("siprec-listen", {}).get("listener_core_pct")
    if listen is not None:
        lines.append(f"{'one listener adds (% of a core per call)':<44}{listen:>25.3f}")
    base = summary.get(BASE, {}).get("calls_per_core")
    if base is not None:
        verdict = "met" if base >= target else "NOT met"
        lines.append(
            f"target: >= {target} unmonitored SIPREC calls per core: {base:.0f} by the slope, {verdict}"
        )
    return "\n".join(lines)

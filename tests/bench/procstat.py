"""What the kernel says about a process and the UDP stack (Linux ``/proc``)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of ``pid`` so far (``/proc/PID/stat`` 14, 15)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def core_busy_seconds(core: int) -> float:
    """Time core ``core`` spent not idle so far, by anyone (``/proc/stat`` cpuN line)."""
    prefix = f"cpu{core} "
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(prefix):
            ticks = [int(x) for x in line.split()[1:]]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
            return (sum(ticks[:8]) - idle) / CLOCK_TICKS  # guest time is already in user
    return 0.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def udp_receive_errors() -> int:
    """Datagrams the kernel dropped on receive, machine-wide (``RcvbufErrors`` of Udp)."""
    lines = [
        line.split()
        for line in Path("/proc/net/snmp").read_text().splitlines()
        if line.startswith("Udp:")
    ]
    if len(lines) < 2:
        return 0
    row = dict(zip(lines[0][1:], lines[1][1:]))
    return int(row.get("RcvbufErrors", 0))


def udp_sockets(pid: int) -> tuple[int, int]:
    """``(drops, queued bytes)`` summed over the UDP sockets ``pid`` holds.

    ``drops`` is each socket's count of datagrams the kernel dropped because its receive
    buffer was full (the last column of ``/proc/net/udp``); ``queued bytes`` is what waits in
    the receive queues now (``rx_queue``): a process that keeps up leaves it near 0.
    """
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / name)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    drops = queued = 0
    for table in ("udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 12 and fields[9] in inodes:
                drops += int(fields[-1])
                queued += int(fields[4].split(":")[1], 16)
    return drops, queued


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"

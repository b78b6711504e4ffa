"""Keep every benchmark peer connection on 127.0.0.1.

aioice gathers host candidates on every interface *except* loopback, so two local peers would
talk over the machine's LAN address. Every benchmark process (the ``live`` server wrapper, the
naive server, the load generator) calls ``loopback_only()`` before it creates a peer
connection, so all ICE candidates, and therefore all media, are on 127.0.0.1. Nothing else in
aiortc or ``live`` changes.
"""

from __future__ import annotations

import aioice.ice


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else ["::1"]


def loopback_only() -> None:
    aioice.ice.get_host_addresses = _loopback_addresses

"""The SIPREC server's glue: settings to sockets, started and stopped with the application.

Off unless ``LIVE_SIPREC_LISTEN`` is set (``live demo`` sets it on 127.0.0.1). Only sources
in ``LIVE_SIPREC_ALLOW`` may record; ``LIVE_SIPREC_DIGEST`` adds digest authentication.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import ssl
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from ..auth import UserStore
from ..config import Network, Settings
from ..errors import ConfigError, NotFound
from ..ingest.rtp import LegStats
from ..ingest.sip.digest import DigestAuthenticator
from ..ingest.sip.transport import SipServer, parse_hostport
from ..ingest.siprec import SessionRecordingServer
from ..ingest.siprec_legs import AgentRules
from ..ingest.siprec_session import SipPeer
from ..policy_holder import PolicyHolder
from ..types import LegName, Role
from .ingest_rtp import leg_metrics, rtp_hosts
from .state import STATE

log = logging.getLogger(__name__)


def allow_checker(networks: Sequence[Network]) -> Callable[[str], bool]:
    def allowed(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in networks)

    return allowed


def agent_rules(settings: Settings) -> AgentRules:
    pattern = None
    if settings.siprec.agent_aor:
        try:
            pattern = re.compile(settings.siprec.agent_aor)
        except re.error as exc:
            raise ConfigError(f"setting siprec_agent_aor: {exc}", setting="siprec_agent_aor") from exc
    return AgentRules(
        agent_aor=pattern,
        agent_label=settings.siprec.agent_label,
        call_id_header=settings.siprec.call_id_header,
        queue_header=settings.siprec.queue_header,
        consent_header=settings.siprec.consent_header,
    )


def known_agent_check(policies: PolicyHolder, users: UserStore) -> Callable[[str], bool]:
    """An agent id the policy's teams or the user store know."""

    def known(agent_id: str) -> bool:
        policy = policies.loaded
        if policy is not None and policy.team_of(agent_id) is not None:
            return True
        try:
            return users.get(agent_id).role is Role.AGENT
        except NotFound:
            return False

    return known


def _tls(settings: Settings, host: str, port: int) -> tuple[tuple[str, int], ssl.SSLContext] | None:
    if not (settings.siprec.tls_cert and settings.siprec.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.siprec.tls_cert, settings.siprec.tls_key)
    if settings.siprec.tls_listen:
        return parse_hostport(settings.siprec.tls_listen, "siprec_tls_listen"), context
    return (host, port + 1 if port else 0), context


def setup(app: web.Application) -> None:
    state = app[STATE]
    settings = state.settings
    if not settings.siprec.listen:
        return
    listen = parse_hostport(settings.siprec.listen, "siprec_listen")
    networks = settings.siprec.allow
    if not networks:
        log.warning("SIPREC is on but LIVE_SIPREC_ALLOW is empty: every recording client is refused")
    digest_users = {user: password.get_secret_value() for user, password in settings.siprec.digest.items()}
    tls = _tls(settings, *listen)
    _bind, advertised = rtp_hosts(settings)
    assert state.rtp_pool is not None, "ingest_rtp.setup must run first"
    server: SipServer | None = None

    def contact(peer: SipPeer) -> str:
        port = server.ports.get(peer.transport, 0) if server else 0
        suffix = "" if peer.transport == "udp" else f";transport={peer.transport}"
        return f"sip:srs@{advertised}:{port}{suffix}"

    srs = SessionRecordingServer(
        state.node.calls,
        state.rtp_pool,
        rtp_address=advertised,
        contact=contact,
        rules=agent_rules(settings),
        known_agent=known_agent_check(state.node.policy, state.users),
        allowed=allow_checker(networks),
        digest=DigestAuthenticator(digest_users) if digest_users else None,
        rtp_timeout_s=float(settings.rtp.timeout_s),
        session_expires_s=settings.siprec.session_expires_s,
    )
    server = SipServer(srs)
    state.siprec = server

    def metrics() -> list[str]:
        stats: dict[LegName, list[LegStats]] = {
            leg: [srs.closed_stats[leg]] + [s.stats[leg] for s in srs.sessions.values() if leg in s.stats]
            for leg in ("agent", "caller")
        }
        lines = [
            "# TYPE live_siprec_sessions gauge",
            f"live_siprec_sessions {len(srs.sessions)}",
            "# TYPE live_siprec_invites_total counter",
            f"live_siprec_invites_total {srs.counters.invites}",
            "# TYPE live_siprec_refused_total counter",
            *(f'live_siprec_refused_total{{status="{s}"}} {n}' for s, n in sorted(srs.counters.refused.items())),
            "# TYPE live_siprec_ended_total counter",
            *(f'live_siprec_ended_total{{reason="{r}"}} {n}' for r, n in sorted(srs.counters.ended.items())),
            "# TYPE live_sip_messages_total counter",
            f'live_sip_messages_total{{result="parsed"}} {server.counters.messages}',
            f'live_sip_messages_total{{result="malformed"}} {server.counters.malformed}',
        ]
        return lines + leg_metrics("siprec", stats)

    state.metric_sources.append(metrics)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await server.start(listen, tls=tls)
        srs.start()
        log.info("SIPREC listening on %s (%s)", settings.siprec.listen, ", ".join(f"{k} {v}" for k, v in server.ports.items()))
        yield
        await server.close()
        await srs.close()

    app.cleanup_ctx.append(lifecycle)

"""SDES-keyed SRTP (RFC 4568 keys, RFC 3711 packets) for inbound RTP legs, via libsrtp.

A SIPREC client or PBX that encrypts media offers ``a=crypto:<tag> <suite> inline:<key||salt>``
per ``m=audio``; the answer echoes the tag and suite with our own key. Inbound packets are
unprotected with the offerer's key (``SrtpReceiver``); our key would only protect what we send,
which for a recvonly stream is at most RTCP. ``SrtpSender`` protects packets, for tests and
simulators that play the offerer.

Suites: AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 (RFC 4568 §6.2), and the AEAD
suites of RFC 7714 §12. Key parameters with an MKI, or session parameters that change packet
processing (UNENCRYPTED_SRTP, UNAUTHENTICATED_SRTP, KDR), are refused: libsrtp's policy here
cannot honour them, and accepting them would silently drop every packet.
"""

from __future__ import annotations

import pylibsrtp

from ..errors import ProtocolError
from .sip.sdp import Crypto

# suite name (RFC 4568 / RFC 7714 SDP spelling) -> (libsrtp profile, master key + salt length)
SUITES: dict[str, tuple[int, int]] = {
    "AES_CM_128_HMAC_SHA1_80": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
    "AES_CM_128_HMAC_SHA1_32": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 30),
    "AEAD_AES_128_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 28),
    "AEAD_AES_256_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 44),
}
_REFUSED_SESSION_PARAMS = ("UNENCRYPTED_SRTP", "UNAUTHENTICATED_SRTP", "KDR=")


class SrtpError(ProtocolError):
    """An unusable SRTP offer, or a packet that fails authentication or the replay check."""

    code = "srtp_error"


def _policy(suite: str, key_salt: bytes, ssrc_type: int) -> pylibsrtp.Policy:
    known = SUITES.get(suite)
    if known is None:
        raise SrtpError(f"unsupported SRTP crypto suite {suite!r}", suite=suite)
    profile, length = known
    if len(key_salt) != length:
        raise SrtpError(
            f"{suite} needs a {length}-byte master key and salt, not {len(key_salt)}", suite=suite
        )
    return pylibsrtp.Policy(key=bytes(key_salt), ssrc_type=ssrc_type, srtp_profile=profile)


class SrtpReceiver:
    """Unprotects one inbound leg's SRTP packets, any SSRC (a new SSRC after failover works)."""

    __slots__ = ("_session", "suite")

    def __init__(self, suite: str, key_salt: bytes) -> None:
        self.suite = suite
        policy = _policy(suite, key_salt, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self._session = pylibsrtp.Session(policy)

    def unprotect(self, data: bytes) -> bytes:
        """The RTP packet inside ``data``; ``SrtpError`` on authentication or replay failure."""
        try:
            return self._session.unprotect(data)
        except (pylibsrtp.Error, ValueError) as exc:  # ValueError: longer than libsrtp's buffer
            raise SrtpError(f"SRTP packet rejected: {exc}") from exc


class SrtpSender:
    """Protects RTP packets as an SDES-keyed sender would (tests, simulators)."""

    __slots__ = ("_session", "suite")

    def __init__(self, suite: str, key_salt: bytes) -> None:
        self.suite = suite
        policy = _policy(suite, key_salt, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._session = pylibsrtp.Session(policy)

    def protect(self, packet: bytes) -> bytes:
        try:
            return self._session.protect(packet)
        except (pylibsrtp.Error, ValueError) as exc:
            raise SrtpError(f"SRTP protect failed: {exc}") from exc


def receiver_for(crypto: Crypto) -> SrtpReceiver:
    """The receiver for an offered ``a=crypto`` (RFC 4568), or ``SrtpError`` for what cannot
    be decrypted here: an unknown suite, a key with an MKI, several keys, or the session
    parameters UNENCRYPTED_SRTP, UNAUTHENTICATED_SRTP or a non-zero KDR."""
    if crypto.suite.upper() not in SUITES:
        raise SrtpError(f"unsupported SRTP crypto suite {crypto.suite!r}", suite=crypto.suite)
    for param in crypto.session_params.split():
        if param.upper().startswith(_REFUSED_SESSION_PARAMS) and param.upper() != "KDR=0":
            raise SrtpError(f"unsupported SDES session parameter {param!r}", parameter=param)
    keys = crypto.key_params.split(";")  # RFC 4568 §9.2: only one key without MKI is usable
    fields = keys[0].split("|")
    if len(keys) != 1 or len(fields) > 2 or (len(fields) == 2 and ":" in fields[1]):
        raise SrtpError("SRTP keys with an MKI, or several keys, are not supported")
    return SrtpReceiver(crypto.suite.upper(), crypto.key_salt)

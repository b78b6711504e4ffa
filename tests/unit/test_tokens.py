"""The signed-token helper behind session cookies, the OIDC login state and CSRF tokens."""

from __future__ import annotations

import json

import pytest

from live.auth.identity import Identity
from live.auth.sessions import SessionCodec
from live.auth.tokens import SignedTokens, b64url_decode, b64url_encode
from live.server.oidc_routes import PendingLogin, PendingLoginCodec
from live.types import Role

NOW = 1_700_000_000.0


def test_base64url_round_trips_without_padding() -> None:
    for data in (b"", b"\0", b"\xff\xfe", b"any carnal pleas", bytes(range(256))):
        text = b64url_encode(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert b64url_decode(text) == data
    # RFC 4648 section 10 test vectors, base64url spelling, padding dropped.
    assert b64url_encode(b"foobar") == "Zm9vYmFy" and b64url_encode(b"fo") == "Zm8"


@pytest.mark.parametrize(
    "bad", ["Zm9v+mFy", "Zm9v/mFy", "Zm8=", "Z", "Zm9vY", "Zm9", "Zm8 ", "Zm9=", "Zn"]
)
def test_base64url_decoder_is_strict(bad: str) -> None:
    # "Zm9" and "Zn" carry stray bits in their last character: a second spelling of b"fo"/b"f".
    with pytest.raises(ValueError):
        b64url_decode(bad)


def test_sealed_fields_come_back_until_expiry() -> None:
    tokens = SignedTokens("secret", "demo")
    token = tokens.seal({"who": "sam", "n": [1, 2]}, NOW + 60)
    opened = tokens.open(token, NOW)
    assert opened is not None and opened.fields == {"who": "sam", "n": [1, 2]}
    assert opened.expires_at == NOW + 60
    assert tokens.open(token, NOW + 60) is None  # expiry is exclusive
    assert tokens.open(token, NOW + 3600) is None


def test_tampered_or_foreign_tokens_do_not_open() -> None:
    tokens = SignedTokens("secret", "demo")
    token = tokens.seal({"who": "sam"}, NOW + 60)
    body, tag = token.split(".")
    longer = b64url_encode(json.dumps({"who": "sam", "exp": NOW + 10**9}).encode())
    other_user = b64url_encode(json.dumps({"who": "admin", "exp": NOW + 60}).encode())
    for forged in (
        f"{longer}.{tag}",
        f"{other_user}.{tag}",
        f"{body}.{tag[:-2]}",
        body,
        f"{body}.",
        "",
        "%%%.%%%",
        "ä.ö",
        SignedTokens("another secret", "demo").seal({"who": "sam"}, NOW + 60),
    ):
        assert tokens.open(forged, NOW) is None, forged


def test_a_token_opens_only_for_its_own_purpose() -> None:
    session = SignedTokens("one secret", "session")
    login = SignedTokens("one secret", "oidc-login")
    assert login.open(session.seal({"u": "sam"}, NOW + 60), NOW) is None
    assert session.open(login.seal({"u": "sam"}, NOW + 60), NOW) is None
    assert session.tag(b"x") != login.tag(b"x")


def test_session_cookie_is_no_oidc_login_state_and_back() -> None:
    """The session codec and the OIDC login codec share a secret in a real deployment."""
    secret = "shared-session-secret"
    sessions, logins = SessionCodec(secret, 3600), PendingLoginCodec(secret)
    cookie, session = sessions.issue("sam", NOW)
    assert sessions.read(cookie, NOW) == session
    assert logins.open(cookie, NOW) is None
    pending = PendingLogin("state-1", "nonce-1", "v" * 64, "/console/", NOW + 600)
    state = logins.seal(pending)
    assert logins.open(state, NOW) == pending
    assert sessions.read(state, NOW) is None
    assert logins.open(state, NOW + 600) is None


def test_session_codec_carries_external_identities_and_expires() -> None:
    codec = SessionCodec("secret", 60)
    who = Identity("ext-1", "Ext One", Role.AUDITOR, ("t1", "t2"), via="session")
    cookie, session = codec.issue("ext-1", NOW, identity=who)
    read = codec.read(cookie, NOW + 59)
    assert read == session and read.identity() == Identity(
        "ext-1", "Ext One", Role.AUDITOR, ("t1", "t2"), "session", session.session_id
    )
    assert codec.read(cookie, NOW + 60) is None
    assert SessionCodec("other secret", 60).read(cookie, NOW) is None


def test_csrf_token_belongs_to_one_session_and_one_secret() -> None:
    codec = SessionCodec("secret", 60)
    token = codec.csrf_token("session-a")
    assert codec.csrf_matches("session-a", token)
    assert not codec.csrf_matches("session-b", token)
    assert not codec.csrf_matches("session-a", None)
    assert not codec.csrf_matches("session-a", "forged")
    assert not codec.csrf_matches("session-a", "ünïcode")
    assert not SessionCodec("other", 60).csrf_matches("session-a", token)
    # A CSRF token is not a MAC a session cookie would accept, and vice versa.
    cookie, session = codec.issue("sam", NOW)
    assert not codec.csrf_matches(session.session_id, cookie.split(".")[1])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        SignedTokens("", "session")
    with pytest.raises(ValueError):
        SignedTokens("secret", "")
    with pytest.raises(ValueError):
        SignedTokens("secret", "demo").seal({"exp": 1}, NOW)

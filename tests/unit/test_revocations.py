"""Revocation records, the set a node checks credentials against, and the SQLite store."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from live.auth.revocation_service import RevocationService
from live.auth.revocation_store import SqliteRevocationStore
from live.auth.revocations import (
    Revocation,
    RevocationKind,
    RevokedSet,
    session_revoked,
    token_revoked,
    user_revoked,
)
from live.auth.sessions import BrowserSession
from live.config import load_settings
from live.errors import BadRequest, ConfigError, RevocationsUnavailable
from tests.support.wait import wait_for

T0 = 1_750_000_000.0
TTL = 8 * 3600.0

times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


@given(
    kind=st.sampled_from(list(RevocationKind)),
    subject=st.text(min_size=1, max_size=200),
    at=times,
    expires_at=st.none() | times,
)
def test_announcements_round_trip(kind: RevocationKind, subject: str, at: float, expires_at: float | None) -> None:
    revocation = Revocation(kind, subject, at, expires_at)
    assert Revocation.from_json(revocation.to_json()) == revocation
    assert Revocation.from_json(revocation.to_json().encode()) == revocation


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"kind": "session", "subject": "s", "at": 1}',
        b'{"kind": "cookie", "subject": "s", "at": 1, "expires_at": null}',
        b'{"kind": "session", "subject": "", "at": 1, "expires_at": null}',
        b'{"kind": "session", "subject": 5, "at": 1, "expires_at": null}',
        b'{"kind": "session", "subject": "s", "at": true, "expires_at": null}',
        b'{"kind": "session", "subject": "s", "at": "1", "expires_at": null}',
        b'{"kind": "session", "subject": "s", "at": 1, "expires_at": "never"}',
        b'{"kind": "session", "subject": "s", "at": 1e999, "expires_at": null}',
        b'{"kind": "user", "subject": "s", "at": 1, "expires_at": null, "extra": 1}',
        ('{"kind": "user", "subject": "' + "x" * 201 + '", "at": 1, "expires_at": null}').encode(),
    ],
)
def test_a_bad_announcement_is_a_bad_request(data: bytes) -> None:
    with pytest.raises(BadRequest):
        Revocation.from_json(data)


def session(user: str = "sup", sid: str = "s1", issued: float = T0) -> BrowserSession:
    return BrowserSession(user, sid, issued + TTL, issued)


def test_one_session_is_revoked_until_it_would_have_expired() -> None:
    known = RevokedSet()
    known.add(session_revoked(session(sid="gone"), T0 + 60))
    assert known.session_revoked(session(sid="gone"))
    assert not known.session_revoked(session(sid="other"))
    known.purge(T0 + TTL - 1)
    assert known.session_revoked(session(sid="gone"))
    known.purge(T0 + TTL)
    assert not known.sessions


def test_a_user_revocation_covers_sessions_issued_until_then_only() -> None:
    known = RevokedSet()
    known.add(user_revoked("sup", T0 + 100, TTL))
    assert known.session_revoked(session(issued=T0))
    assert known.session_revoked(session(issued=T0 + 100))
    assert not known.session_revoked(session(issued=T0 + 101))
    assert not known.session_revoked(session(user="other", issued=T0))
    # An older revocation learnt late does not shorten a newer one.
    known.add(user_revoked("sup", T0 + 10, TTL))
    assert known.session_revoked(session(issued=T0 + 50))
    known.purge(T0 + 100 + TTL)
    assert not known.users


def test_a_withdrawn_token_stays_withdrawn() -> None:
    known = RevokedSet()
    known.add(token_revoked("ab" * 32, T0))
    known.purge(math.inf)
    assert known.token_revoked("ab" * 32)
    assert not known.token_revoked("cd" * 32)


async def test_the_sqlite_store_reads_what_was_added_after_a_cursor(tmp_path: Path) -> None:
    store = SqliteRevocationStore(tmp_path / "sessions.sqlite3")
    await store.open()
    try:
        first = [session_revoked(session(sid="a"), T0), user_revoked("sup", T0, TTL)]
        await store.add(first)
        found, cursor = await store.read_after(0, T0)
        assert found == first
        assert await store.read_after(cursor, T0) == ([], cursor)
        later = [token_revoked("ab" * 32, T0 + 1)]
        await store.add(later)
        assert await store.read_after(cursor, T0) == (later, cursor + 1)
        # What has expired is neither returned nor kept; tokens are kept for good.
        assert (await store.read_after(0, T0 + TTL))[0] == later
        assert await store.purge(T0 + TTL) == 2
        assert (await store.read_after(0, T0))[0] == later
    finally:
        await store.aclose()


async def test_revocations_of_the_node_local_file_are_carried_over(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE revoked_session (session_id TEXT PRIMARY KEY, expires_at REAL NOT NULL)")
        db.execute("CREATE TABLE revoked_user (user_id TEXT PRIMARY KEY, not_before REAL NOT NULL)")
        db.execute("INSERT INTO revoked_session VALUES ('old', ?)", (T0 + TTL,))
        db.execute("INSERT INTO revoked_user VALUES ('sup', ?)", (T0,))
    db.close()
    store = SqliteRevocationStore(path)
    await store.open()
    try:
        found, _ = await store.read_after(0, T0)
        known = RevokedSet()
        for revocation in found:
            known.add(revocation)
        assert known.session_revoked(session(user="other", sid="old", issued=T0 + 5))
        assert known.session_revoked(session(sid="new", issued=T0))
        assert not known.session_revoked(session(sid="new", issued=T0 + 1))
    finally:
        await store.aclose()
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert "revoked_session" not in tables and "revoked_user" not in tables


async def test_the_service_refuses_credentials_past_the_bound_and_recovers(tmp_path: Path) -> None:
    clock = [1000.0]
    service = RevocationService(
        SqliteRevocationStore(tmp_path / "sessions.sqlite3"),
        session_ttl_s=TTL,
        poll_s=1,
        bound_s=10,
        clock=lambda: T0,
        monotonic=lambda: clock[0],
    )
    await service.start()
    try:
        assert not service.session_revoked(session(sid="a"))
        await service.revoke("a", T0 + TTL)
        await service.revoke_tokens(["ab" * 32])
        assert service.session_revoked(session(sid="a")) and service.token_revoked("ab" * 32)
        clock[0] += 10.5  # no read has started for longer than the bound
        with pytest.raises(RevocationsUnavailable):
            service.session_revoked(session(sid="b"))
        with pytest.raises(RevocationsUnavailable):
            service.token_revoked("cd" * 32)
        await wait_for(lambda: service.stale_for() is None, 30, "the next read of the store")
        assert service.session_revoked(session(sid="a")) and not service.session_revoked(session(sid="b"))
    finally:
        await service.stop()
    # What it wrote is in the store for the next start.
    again = SqliteRevocationStore(tmp_path / "sessions.sqlite3")
    await again.open()
    try:
        assert {r.subject for r in (await again.read_after(0, T0))[0]} == {"a", "ab" * 32}
    finally:
        await again.aclose()


def test_the_poll_interval_must_be_below_the_bound(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bound"):
        RevocationService(SqliteRevocationStore(tmp_path / "x"), session_ttl_s=TTL, poll_s=10, bound_s=10)
    with pytest.raises(ConfigError, match="revocation_bound_s"):
        load_settings({"LIVE_REVOCATION_POLL_S": "10"}, None)
    with pytest.raises(ConfigError, match="revocation_bound_s"):
        load_settings({"LIVE_REVOCATION_BOUND_S": "1"}, None)

"""The notice board with an injected clock: digest timing, texts, the store across reopen."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from live.errors import LedgerUnavailable
from live.notices import NoticeBoard, NoticeStore, after_call_text, duration_text
from live.notices.board import OwedNotice
from live.policy import load_policy
from tests.support.wait import wait_for

BERLIN = ZoneInfo("Europe/Berlin")
POLICY = load_policy(
    """
version = "d-1"
purposes = ["quality"]
[quotas]
per_agent_per_month = 10
per_supervisor_per_day = 10
[hours]
timezone = "Europe/Berlin"
allowed = ["Mon-Sun 00:00-24:00"]
[consent]
caller = "required"
[notices]
default = "digest"
digest_schedule = "daily 18:00"
unannounced_allowed = true
[disclosure]
listener_names = false
[retention]
days = 30
""",
    "test",
)


class RecordingLedger:
    def __init__(self) -> None:
        self.appended: list[tuple[str, dict[str, Any]]] = []

    async def append(self, kind: str, *, actor: str, at: float, **fields: Any) -> int:
        self.appended.append((kind, fields))
        return len(self.appended)


def test_texts() -> None:
    assert duration_text(192) == "3 min 12 s"
    assert duration_text(45.4) == "45 s"
    assert duration_text(3720) == "1 h 2 min"
    at = datetime(2026, 3, 2, 10, 42, tzinfo=BERLIN).timestamp()
    item = {"call_started_at": at, "duration_s": 192, "purpose": "training", "listener": "QA team"}
    assert after_call_text(item, BERLIN) == (
        "your call at 10:42 was listened to for 3 min 12 s — purpose: Training — by QA team"
    )
    assert duration_text(192, "de") == "3 Min. 12 Sek." and duration_text(3725, "de") == (
        "1 Std. 2 Min. 5 Sek."
    )
    assert after_call_text({**item, "listener": "supervisor"}, BERLIN, "de") == (
        "bei Ihrem Gespräch um 10:42 wurde 3 Min. 12 Sek. lang mitgehört — Zweck: Schulung — "
        "von: Teamleitung"
    )


async def test_digest_at_the_schedule_and_kept_in_the_store(tmp_path: Path) -> None:
    now = [datetime(2026, 3, 2, 17, 0, tzinfo=BERLIN).timestamp()]
    ledger = RecordingLedger()
    board = NoticeBoard(NoticeStore(tmp_path / "n.sqlite3"), ledger, lambda: POLICY, lambda: now[0])  # type: ignore[arg-type]
    await board.store.open()
    try:
        assert board.next_digest_at() == datetime(2026, 3, 2, 18, 0, tzinfo=BERLIN).timestamp()
        now[0] = datetime(2026, 3, 2, 18, 0, tzinfo=BERLIN).timestamp()
        assert board.next_digest_at() == datetime(2026, 3, 3, 18, 0, tzinfo=BERLIN).timestamp()
        for n in range(2):
            await board.listen_ended(
                agent_id="agent-9",
                session_id=f"ls-{n}",
                call_id="CA-1",
                mode="digest",
                item={"purpose": "quality", "listener": "supervisor", "started_at": now[0],
                      "call_started_at": now[0], "duration_s": 60, "policy_version": "d-1"},
            )
        assert await board.store.of_agent("agent-9") == []
        [digest] = await board.run_digest()
        assert digest.text.startswith("2 listens on your calls, 2 min in all:")
        assert digest.to_json("de")["text"].startswith(
            "2 Mithör-Vorgänge bei Ihren Gesprächen, insgesamt 2 Min.:"
        )
        assert "Zweck: Qualitätssicherung — von: Teamleitung" in digest.text_in("de")
        assert ledger.appended == []  # no page open: not delivered yet
    finally:
        await board.store.aclose()
    store = NoticeStore(tmp_path / "n.sqlite3")
    await store.open()
    try:
        [kept] = await store.of_agent("agent-9", unseen_only=True)
        assert kept.notice_id == digest.notice_id
    finally:
        await store.aclose()


class FlakyStore(NoticeStore):
    """A notice store whose database is down for the first ``down`` writes."""

    def __init__(self, path: Path, down: int) -> None:
        super().__init__(path)
        self.down = down

    async def add(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            self.down -= 1
            raise LedgerUnavailable("notice store: the database does not answer")
        return await super().add(*args, **kwargs)


async def test_a_notice_the_store_could_not_take_is_given_once_it_can(tmp_path: Path) -> None:
    """The shared database is down when a listen ends: the notice is owed, tried again, and
    given (and the caller told) once the store takes it; nothing is given twice."""
    board = NoticeBoard(FlakyStore(tmp_path / "n.sqlite3", down=3), RecordingLedger(), lambda: POLICY)
    await board.start()
    page, leave = board.subscribe("agent-1")
    kept: list[str] = []
    arguments: dict[str, Any] = {
        "agent_id": "agent-1",
        "session_id": "ls_owed",
        "call_id": "CA1",
        "mode": "after_call",
        "item": {"purpose": "quality", "listener": "QA", "started_at": 1000.0, "call_started_at": 990.0,
                 "duration_s": 60, "policy_version": "d-1"},
    }

    async def then(notice: Any) -> None:
        kept.append(notice.notice_id)

    try:
        with pytest.raises(LedgerUnavailable):
            await board.listen_ended(**arguments)
        board.owe(OwedNotice(arguments, then))
        await wait_for(lambda: kept, 60, "the owed notice to be kept")
        [notice] = await board.notices_for("agent-1")
        assert kept == [notice.notice_id] and notice.data["session_id"] == "ls_owed"
        shown = page.get_nowait()
        assert shown["type"] == "notice" and shown["notice"]["id"] == notice.notice_id
        assert page.empty()
    finally:
        leave()
        await board.aclose()

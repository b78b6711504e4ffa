"""Agent notices: telling agents about listens on their calls, as the policy says.

Layer 4. ``NoticeStore`` keeps notices durably (``DATA_DIR/notices.sqlite3``; in a cluster the
ledger's PostgreSQL, ``PostgresNoticeStore``) until the agent has seen them, across restarts;
``NoticeBoard`` turns listen sessions into notices per the agent's notice mode (``live``, ``after_call``, ``digest``) and pushes them, and the live
monitoring indicator, to the agent's open pages; ``NoticeRelay`` brings listens made on other
nodes from the bus to this node's board.
"""

from .board import AgentEvent, NoticeBoard, localised
from .relay import NoticeRelay
from .store import Notice, NoticeStore, NoticeTable, open_notice_store
from .text import after_call_text, digest_text, duration_text

__all__ = [
    "AgentEvent",
    "Notice",
    "NoticeBoard",
    "NoticeRelay",
    "NoticeStore",
    "NoticeTable",
    "after_call_text",
    "digest_text",
    "duration_text",
    "localised",
    "open_notice_store",
]

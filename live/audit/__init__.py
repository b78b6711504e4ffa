"""The listen ledger: a verifiable, append-only record of every listen session.

Entries are leaves of an RFC 9162 Merkle tree (``merkle``), serialised as RFC 8785
canonical JSON (``canonical``, ``entry``), typed (``events``) with personal details kept
beside the leaf under a salted commitment; checkpoints are C2SP signed notes
(``checkpoint``, ``timeline``) by a key kept in the data directory (``keys``). The log
(``log``) sits on a store (``store_sqlite``, ``store_postgres``) and checks itself
(``verify``); ``proofs`` carry inclusion and consistency proofs, and ``export`` whole
bundles, to whoever verifies offline.
"""

from .entry import LedgerEntry
from .events import EVENT_KINDS, EventError
from .export import export_bundle, verify_bundle
from .ledger import Ledger, MerkleLedger, PostgresLedger, SqliteLedger, open_ledger
from .proofs import ConsistencyProof, InclusionProof
from .verify import Problem, VerifyReport

__all__ = [
    "EVENT_KINDS",
    "ConsistencyProof",
    "EventError",
    "InclusionProof",
    "Ledger",
    "LedgerEntry",
    "MerkleLedger",
    "PostgresLedger",
    "Problem",
    "SqliteLedger",
    "VerifyReport",
    "export_bundle",
    "open_ledger",
    "verify_bundle",
]

"""The listen ledger: an append-only, durable record of every listen session."""

from .ledger import Ledger, LedgerEntry, open_ledger

__all__ = ["Ledger", "LedgerEntry", "open_ledger"]

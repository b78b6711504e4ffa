"""Telephony ingest adapters: each turns a protocol into calls with an agent and a caller leg."""

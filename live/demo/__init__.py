"""The demo: speech clips and a simulator that streams calls through the real ingest path."""

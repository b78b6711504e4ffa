"""live: a self-hosted silent-monitoring server for contact centres."""

__version__ = "0.1.0"

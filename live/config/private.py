"""Files only their owner may read (keys), private from the first byte.

``os.open(..., O_CREAT | O_EXCL, 0o600)`` creates the file with its final mode: there is no
moment in which another user could open it, as there is between writing a file and
``chmod``-ing it. ``O_EXCL`` also makes two processes starting at once agree on one key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SESSION_KEY_FILE = "session.key"


def create_private_file(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data``, mode 0600; ``False`` if it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True


def session_key(data_dir: Path) -> str:
    """The installation's cookie key in ``DATA_DIR/session.key``, created at the first start
    (so restarts keep sessions)."""
    path = data_dir / SESSION_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        create_private_file(path, secrets.token_hex(32).encode("ascii"))
    return path.read_text(encoding="ascii").strip()

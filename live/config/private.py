"""Files only their owner may read (keys, the user store), private from the first byte.

The bytes go to a temporary file opened with ``os.open(..., O_CREAT | O_EXCL, 0o600)``, so
there is no moment in which another user could open it (as there is between writing a file
and ``chmod``-ing it), and no moment in which the final name holds half a file. The
temporary file then takes the final name: by ``os.link`` to create (which fails if the
name exists, so two processes starting at once agree on one key) or ``os.replace`` to
replace.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SESSION_KEY_FILE = "session.key"


def private_temporary(path: Path, data: bytes) -> Path:
    """A new file beside ``path`` holding ``data`` (mode 0600, fsynced)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def create_private_file(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data``, mode 0600; ``False`` if it exists already."""
    temporary = private_temporary(path, data)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True


def replace_private_file(path: Path, data: bytes) -> None:
    """Replace (or create) ``path`` with ``data``, mode 0600, atomically."""
    temporary = private_temporary(path, data)
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def session_key(data_dir: Path) -> str:
    """The installation's cookie key in ``DATA_DIR/session.key``, created at the first start
    (so restarts keep sessions)."""
    path = data_dir / SESSION_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        create_private_file(path, secrets.token_hex(32).encode("ascii"))
    return path.read_text(encoding="ascii").strip()

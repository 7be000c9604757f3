"""Every file the project creates is owner-only (0600), whatever the umask.

One helper for all of them: the progress database and the Telegram intake/outbox (with
their ``-wal`` and ``-shm``), the rescue copies, the PDF reports and pictures, the
insights page and the team's exports. They hold personal data (texts, names, answers)
that no other local account may read.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Owner read and write, nothing for the group or others.
PRIVATE_MODE = 0o600


def create_private(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty and owner-only if missing; tighten it (and its SQLite companions) if not.

    SQLite gives the -wal and -shm files the main file's mode, so creating the main file
    first with 0600 is enough for a database; files left by an older version are tightened.
    Errors are ignored: the caller's own open reports them (in French for the databases).
    """
    path = Path(path)
    if str(path) == ":memory:":
        return
    try:
        if not path.exists():
            os.close(_open_private(path, os.O_RDWR | os.O_CREAT | os.O_EXCL))
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
            tighten(candidate)
    except OSError:
        pass


def tighten(path: Path) -> None:
    """Make an existing file owner-only (nothing if it does not exist)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if mode != PRIVATE_MODE:
        os.chmod(path, PRIVATE_MODE)


def _open_private(path: Path, flags: int) -> int:
    """``os.open`` with mode 0600 set exactly (a umask may remove the owner's bits too)."""
    descriptor = os.open(path, flags, PRIVATE_MODE)
    try:
        os.fchmod(descriptor, PRIVATE_MODE)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def write_private(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` (replacing it) as an owner-only file; the file is never readable by others,
    not even for an instant (it is created 0600, an existing file is tightened before it is truncated)."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tighten(path)
    descriptor = _open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        view = memoryview(payload)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
    finally:
        os.close(descriptor)
    return path

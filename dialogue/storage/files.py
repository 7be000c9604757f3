"""Files that hold personal data are created owner-only (0600), whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path


def create_private(path: Path) -> None:
    """The database holds personal data: owner-only (0600) whatever the umask.

    SQLite gives the -wal and -shm files the main file's mode, so creating the
    main file first with 0600 is enough; existing files are tightened too.
    """
    if str(path) == ":memory:":
        return
    try:
        if not path.exists():
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if candidate.exists() and candidate.stat().st_mode & 0o777 != 0o600:
                os.chmod(candidate, 0o600)
    except OSError:
        pass  # read-only file or folder: SQLite's own error, described in French, follows

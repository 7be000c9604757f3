"""Opening a SQLite file the way every database of the project is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dialogue.storage.errors import StorageError, describe
from dialogue.storage.files import create_private
from dialogue.storage.no_numpy import numpy_hidden

with numpy_hidden():  # sqlite-utils would import numpy (installed for the PDF report) at start-up
    from sqlite_utils import Database


def open_private_database(path: Path, *, busy_timeout_ms: int) -> Database:
    """Open (creating) ``path`` owner-only, in WAL mode, with deleted rows overwritten.

    The connection may be used from another thread than the one that opened it, never from two at once.
    """
    try:
        create_private(path)  # SQLite gives -wal and -shm the main file's mode
        db = Database(sqlite3.connect(str(path), check_same_thread=False))
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        # What /oublier deletes is overwritten in the file, not only unlinked (whatever the build's default).
        db.execute("PRAGMA secure_delete = ON")
        if db.journal_mode != "wal":
            db.enable_wal()
        # WAL + NORMAL: a commit survives the process being killed; only a power cut or an OS crash
        # may roll back the last commits (never corrupting the file). Saves one fsync per event.
        db.execute("PRAGMA synchronous = NORMAL")
        create_private(path)  # a file left by an older version, and its companions, tightened
    except (sqlite3.DatabaseError, OSError) as error:
        raise StorageError(f"{path} : {describe(error)}") from error
    return db

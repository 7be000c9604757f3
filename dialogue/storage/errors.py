"""Storage errors, in one place for every store and channel, with their French descriptions."""

from __future__ import annotations


class StorageError(RuntimeError):
    """The database cannot be opened or written (read-only file, locked, not SQLite)."""

    #: True when waiting may help (lock held by another program, disk full, file read-only).
    transient = False


class DatabaseBusy(StorageError):
    """Another program holds the write lock: the change was not made, try again later."""

    transient = True


class StorageUnavailable(StorageError):
    """The file cannot be written right now (read-only, disk full, I/O error)."""

    transient = True


class DatabaseGone(StorageError):
    """The database file was deleted or replaced while open: writing on would lose everything."""


def describe(error: BaseException) -> str:
    message = str(error).lower()
    if "readonly" in message or "read-only" in message:
        return "la base de données est en lecture seule (vérifiez les droits du fichier)."
    if "locked" in message or "busy" in message:
        return "la base de données est verrouillée par un autre programme."
    if "disk is full" in message:
        return "le disque est plein."
    if "disk i/o error" in message:
        return "écriture impossible sur le disque (disque plein, limite de taille atteinte ou fichier supprimé)."
    if "unable to open" in message:
        return "impossible d’ouvrir le fichier (dossier en lecture seule, droits insuffisants ou chemin invalide)."
    if "not a database" in message or "file is encrypted" in message:
        return "ce fichier n’est pas une base SQLite valide."
    return f"erreur de base de données : {message}"


def storage_error(error: BaseException) -> StorageError:
    """The :class:`StorageError` subclass matching an SQLite error."""
    message = str(error).lower()
    if "locked" in message or "busy" in message:
        return DatabaseBusy(describe(error))
    if "readonly" in message or "read-only" in message or "disk is full" in message or "disk i/o" in message:
        return StorageUnavailable(describe(error))
    return StorageError(describe(error))

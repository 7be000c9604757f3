"""Errors raised while loading the knowledge files."""

from __future__ import annotations

from pathlib import Path


class KnowledgeError(Exception):
    """A knowledge file is unreadable or invalid.

    The message always names the file, and when known the entry and the field,
    so that a domain expert can find the mistake without reading code.
    """

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        entry: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = Path(file).name if file else "?"
        self.entry = entry
        self.field = field
        self.detail = message
        where = self.file
        if entry:
            where += f", entrée « {entry} »"
        if field:
            where += f", champ « {field} »"
        super().__init__(f"{where} : {message}")


class KnowledgeErrors(Exception):
    """Several validation errors found in one pass."""

    def __init__(self, errors: list[KnowledgeError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))

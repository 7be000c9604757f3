"""Errors raised while loading the knowledge files."""

from __future__ import annotations

from pathlib import Path


class KnowledgeError(Exception):
    """A knowledge file is unreadable or invalid.

    Every message has the same shape, so that a domain expert can fix the
    YAML without reading code: the file, the entry and the field when known,
    what is wrong, and when possible what to write instead (``hint``)::

        topics.yaml, entrée « ptce.definition », champ « short » : texte trop long (812 caractères, maximum 700) → raccourcissez le texte
    """

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        entry: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = Path(file).name if file else "?"
        self.entry = entry
        self.field = field
        self.detail = message
        self.hint = hint
        where = self.file
        if entry:
            where += f", entrée « {entry} »"
        if field:
            where += f", champ « {field} »"
        text = f"{where} : {message}"
        if hint:
            text += f" → {hint}"
        super().__init__(text)


class KnowledgeErrors(Exception):
    """Several validation errors found in one pass."""

    def __init__(self, errors: list[KnowledgeError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))

"""The one validation helper of the ``knowledge`` package.

Every loader (topics, glossary, lexicon, document, flows, synthesis rules,
and any later file) reads YAML with :func:`read_yaml` and reports problems
through a :class:`Collector`, so that every error a domain expert sees has
the same shape: file, entry, field, what is wrong and what to write instead.

This module imports nothing else from the package but ``errors``: the
loaders depend on it, never the other way round.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from knowledge.errors import KnowledgeError, KnowledgeErrors

#: libyaml's safe loader when PyYAML was built with it (several times faster), else the pure-Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file, turning syntax errors into a KnowledgeError."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_YAML_LOADER)
    except FileNotFoundError:
        raise KnowledgeErrors([KnowledgeError(path, "fichier introuvable")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (ligne {mark.line + 1}, colonne {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise KnowledgeErrors(
            [KnowledgeError(path, f"YAML invalide{where} : {problem}",
                            hint="vérifiez l’indentation, les deux-points et les guillemets de cette ligne")]
        ) from None
    except UnicodeDecodeError:
        raise KnowledgeErrors(
            [KnowledgeError(path, "le fichier doit être encodé en UTF-8", hint="réenregistrez-le en UTF-8")]
        ) from None


def closest(value: object, choices: Iterable[str]) -> str | None:
    """The known name an expert most probably meant (a typo), or None."""
    import difflib  # only when an error is being reported: keeps start-up lean

    found = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(value: object, choices: Iterable[str]) -> str | None:
    """A hint such as « écrivez plutôt « ptce.definition » » when a close name exists."""
    guess = closest(value, choices)
    return f"écrivez plutôt « {guess} »" if guess else None


class Collector:
    """Collects the errors of one file, so that one pass reports them all."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.errors: list[KnowledgeError] = []

    def add(
        self,
        message: str,
        entry: str | None = None,
        field: str | None = None,
        hint: str | None = None,
        *,
        field_name: str | None = None,  # the former loader helper's spelling
    ) -> None:
        field = field if field is not None else field_name
        self.errors.append(KnowledgeError(self.path, message, entry=entry, field=field, hint=hint))

    def raise_if_any(self) -> None:
        if self.errors:
            raise KnowledgeErrors(self.errors)

    def mapping(self, value: Any, entry: str | None, field: str | None = None) -> bool:
        if not isinstance(value, dict):
            self.add("un dictionnaire (clé: valeur) est attendu", entry, field,
                     "écrivez une ligne « nom: valeur » par champ, avec la même indentation")
            return False
        return True

    def fields(
        self,
        value: Any,
        entry: str | None,
        required: Iterable[str],
        optional: Iterable[str] = (),
        *,
        strict: bool = False,
    ) -> bool:
        """Report missing and unknown fields.

        Returns False when ``value`` is not a mapping; with ``strict``, also
        when a field is missing or unknown (the caller then skips the entry).
        """
        if not self.mapping(value, entry):
            return False
        required = tuple(required)
        allowed = set(required) | set(optional)
        complete = True
        for name in required:
            if name not in value:
                self.add("champ obligatoire manquant", entry, name, f"ajoutez une ligne « {name}: … » à cette entrée")
                complete = False
        for name in value:
            if name not in allowed:
                guess = closest(name, allowed)
                hint = f"écrivez plutôt « {guess} »" if guess else None
                self.add(f"champ inconnu (champs permis : {', '.join(sorted(allowed))})", entry, str(name), hint)
                complete = False
        return complete or not strict

    def text(
        self, value: Mapping, entry: str | None, name: str, *, max_len: int | None = None, optional: bool = False
    ) -> str:
        """A non-empty text field, stripped; "" when absent (a missing required field is reported by ``fields``)."""
        if name not in value:
            return ""
        text = value[name]
        if text is None and optional:
            return ""
        if not isinstance(text, str) or not text.strip():
            self.add("texte vide ou absent", entry, name, "écrivez le texte entre guillemets, ou retirez le champ s’il est facultatif")
            return ""
        text = text.strip()
        if max_len is not None and len(text) > max_len:
            self.add(f"texte trop long ({len(text)} caractères, maximum {max_len})", entry, name,
                     f"raccourcissez-le de {len(text) - max_len} caractères au moins")
        return text

    def ident(self, value: Mapping, entry: str | None, name: str, pattern: re.Pattern[str], limit: int) -> str:
        if name not in value:
            return ""
        ident = value[name]
        if not isinstance(ident, str) or not pattern.match(ident):
            self.add(
                f"identifiant « {ident} » invalide ({limit} caractères au plus : minuscules, chiffres, _)",
                entry,
                name,
                "écrivez-le en minuscules sans accents, les mots séparés par « _ »",
            )
            return str(ident) if ident is not None else ""
        return ident

    def strings(
        self, value: Mapping, entry: str | None, name: str, *, minimum: int = 0, optional: bool = True
    ) -> tuple[str, ...]:
        """A list of non-empty texts; () when absent (reported only if not ``optional``)."""
        items = value.get(name)
        if items is None:
            if not optional:
                self.add("une liste de textes non vides est attendue", entry, name, f"écrivez « {name}: [\"…\", \"…\"] »")
            return ()
        if not isinstance(items, list) or not all(isinstance(item, str) and item.strip() for item in items):
            self.add("une liste de textes non vides est attendue", entry, name,
                     "une ligne « - \"…\" » par élément, sans élément vide")
            return ()
        if len(items) < minimum:
            self.add(f"au moins {minimum} éléments attendus, {len(items)} trouvés", entry, name,
                     f"ajoutez {minimum - len(items)} élément(s)")
        return tuple(item.strip() for item in items)

    def items(self, value: Mapping, entry: str | None, name: str) -> list[Any]:
        if name not in value:
            return []
        items = value[name]
        if not isinstance(items, list) or not items:
            self.add("une liste non vide est attendue", entry, name, "une ligne « - … » par élément")
            return []
        return items

    def chapter(self, value: Mapping, entry: str | None, name: str, chapters: Iterable[str]) -> str:
        """A chapter number known to document.yaml (« 05 »; a bare 5 is accepted)."""
        if name not in value:
            return ""
        chapter = value[name]
        if isinstance(chapter, int) and not isinstance(chapter, bool):
            chapter = f"{chapter:02d}"
        known = sorted(chapters)
        if not isinstance(chapter, str) or chapter not in known:
            span = f"« {known[0]} » à « {known[-1]} »" if known else "un chapitre de document.yaml"
            self.add(f"chapitre « {chapter} » inconnu du document", entry, name,
                     f"écrivez un numéro sur deux chiffres entre guillemets, de {span}")
            return str(chapter)
        return chapter

    def reference(self, value: object, known: Iterable[str], entry: str | None, field: str, what: str) -> bool:
        """Check that ``value`` names an existing ``what`` (e.g. « sujet »); suggest the closest name."""
        known = list(known)
        if value in known:
            return True
        self.add(f"{what} « {value} » inexistant", entry, field, did_you_mean(value, known))
        return False


class StrictCollector(Collector):
    """The same checks with the knowledge loader's defaults.

    An entry with a missing or unknown field is skipped (``fields`` returns
    False), lists are required unless ``optional``, and a required text that
    is absent is reported here. Modules that imported the loader's former
    ``_Collector`` keep these semantics.
    """

    def fields(self, value: Any, entry: str | None, required: Iterable[str], optional: Iterable[str] = (), *, strict: bool = True) -> bool:
        return super().fields(value, entry, required, optional, strict=strict)

    def text(
        self, value: Mapping, entry: str | None, name: str, *, max_len: int | None = None, optional: bool = False
    ) -> str:
        if name not in value and not optional:
            self.add("texte vide ou absent", entry, name, f"ajoutez une ligne « {name}: … » à cette entrée")
            return ""
        return super().text(value, entry, name, max_len=max_len, optional=optional)

    def strings(
        self, value: Mapping, entry: str | None, name: str, *, minimum: int = 0, optional: bool = False
    ) -> tuple[str, ...]:
        return super().strings(value, entry, name, minimum=minimum, optional=optional)


def entry_name(value: Any, fallback: str, prefix: str = "") -> str:
    """How an error names a YAML entry: its ``id`` when it has one, else ``fallback``; after ``prefix ›``."""
    ident = value.get("id") if isinstance(value, dict) else None
    name = str(ident) if isinstance(ident, str) and ident else fallback
    return f"{prefix} › {name}" if prefix else name

"""The lexicon file (``lexicon.yaml``): synonyms, stop words, domain words and the matcher's thresholds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from knowledge.errors import KnowledgeErrors
from knowledge.model import Confidence, Lexicon
from knowledge.text import normalise
from knowledge.validation import StrictCollector, read_yaml


def load_lexicon(path: Path) -> Lexicon:
    check = StrictCollector(path)
    raw = read_yaml(path)
    synonyms: dict[str, str] = {}
    stopwords: set[str] = set()
    domain: set[str] = set()
    confidence = Confidence()
    subject: set[str] = set()
    greetings: set[str] = set()
    introductions: set[str] = set()
    optional = ("confidence", "subject_terms", "greetings", "introductions")
    if check.fields(raw, None, ("synonyms", "stopwords", "domain_terms"), optional):
        if not isinstance(raw["synonyms"], dict):
            check.add("dictionnaire « forme canonique: [variantes] » attendu", None, "synonyms")
        else:
            for canonical, variants in raw["synonyms"].items():
                if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
                    check.add("liste de variantes attendue", str(canonical), "synonyms")
                    continue
                target = normalise(str(canonical))
                for variant in variants:
                    key = normalise(variant)
                    if key in synonyms and synonyms[key] != target:
                        check.add(f"variante « {variant} » déjà rattachée à « {synonyms[key]} »", str(canonical), "synonyms")
                    synonyms[key] = target
        stopwords = {normalise(word) for word in check.strings(raw, "lexicon", "stopwords")}
        domain = {normalise(word) for word in check.strings(raw, "lexicon", "domain_terms", minimum=1)}
        confidence = _confidence(check, raw.get("confidence"))
        subject = {normalise(word) for word in check.strings(raw, "lexicon", "subject_terms", optional=True)}
        greetings = {normalise(word) for word in check.strings(raw, "lexicon", "greetings", optional=True)}
        introductions = {normalise(word) for word in check.strings(raw, "lexicon", "introductions", optional=True)}
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return Lexicon(
        synonyms,
        frozenset(stopwords),
        frozenset(domain),
        confidence,
        frozenset(subject),
        frozenset(greetings - {""}),
        frozenset(introductions - {""}),
    )


def _confidence(check: StrictCollector, raw: Any) -> Confidence:
    """The matcher's thresholds: each optional, each a number from 0 to 1."""
    if raw is None:
        return Confidence()
    names = [f.name for f in dataclasses.fields(Confidence)]
    if not check.fields(raw, "confidence", (), names):
        return Confidence()
    values = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            check.add("nombre entre 0 et 1 attendu", "confidence", name)
        else:
            values[name] = float(value)
    return Confidence(**values)


"""Scan the answer space for contradictions in the synthesis (tests and ``make bench``).

A contradiction is declared in ``synthesis.yaml`` (``contradictions``): statements that must
never be shown together, or a statement shown with a route or with answers it contradicts.
:func:`random_answers` draws answer sets the way the flows let a person give them (an option
« aucun » stays alone, a question may be skipped or not reached); :func:`scan` counts the
contradictions over many of them. The suite runs a few hundred examples through hypothesis;
the benchmark runs at least 100,000.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from dialogue.flows.synthesis import Answers, build_synthesis, contradictions
from knowledge.flows import Question, SynthesisRules

#: Options that stand alone in a multiple choice (the runner clears the others).
EXCLUSIVE = frozenset({"aucun", "aucune"})
#: Share of questions left unanswered, and skipped with « Passer ».
MISSING, SKIPPED = 0.15, 0.08


def draw(question: Question, rng: random.Random) -> str | list[str] | None:
    """One answer to ``question`` as the flows would store it (None: skipped)."""
    if rng.random() < SKIPPED:
        return None
    ids = list(question.option_ids)
    if question.kind == "single":
        return rng.choice(ids)
    alone = [option for option in ids if option in EXCLUSIVE]
    others = [option for option in ids if option not in EXCLUSIVE]
    if alone and rng.random() < 0.15:
        return [alone[0]]
    chosen = [option for option in others if rng.random() < 0.5]
    return chosen


def random_answers(rules: SynthesisRules, rng: random.Random) -> dict[str, str | list[str] | None]:
    return {key: draw(question, rng) for key, question in rules.questions.items() if rng.random() >= MISSING}


@dataclass(slots=True)
class ScanResult:
    answer_sets: int = 0
    #: Contradiction id → how many answer sets showed it, and one example.
    found: Counter[str] = field(default_factory=Counter)
    examples: dict[str, Answers] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.found.values())


def check(rules: SynthesisRules, answers: Answers, result: ScanResult) -> None:
    synthesis = build_synthesis(rules, answers)
    result.answer_sets += 1
    for found in contradictions(rules, synthesis, answers):
        result.found[found.id] += 1
        result.examples.setdefault(found.id, answers)


def scan(rules: SynthesisRules, count: int, seed: int = 2026) -> ScanResult:
    """``count`` random answer sets; the result lists every contradiction shown."""
    rng = random.Random(seed)
    result = ScanResult()
    for _ in range(count):
        check(rules, random_answers(rules, rng), result)
    return result

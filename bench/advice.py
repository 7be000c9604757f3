"""Advice an expert would sign (``make bench``, section « advice », issue #20).

- **Contradictions**: 100,000 random answer sets (3,000 with ``--quick``), drawn as the flows
  let a person answer, through the synthesis; every contradiction declared in
  ``synthesis.yaml`` is looked for. Target: 0.
- **Fact check**: the mutation test of ``knowledge/mutations.py`` plants each kind of error
  in a copy of the knowledge; ``kb check --against`` must catch every kind (100 %).
"""

from __future__ import annotations

import time

from bench.report import Section
from knowledge.loader import KnowledgeBase

NAME = "advice"


def advice(*, kb: KnowledgeBase, answer_sets: int = 100_000, workdir=None, one_by_one: bool = True) -> Section:
    from dialogue.flows.synthesis_scan import scan

    section = Section(NAME)
    started = time.perf_counter()
    result = scan(kb.synthesis, answer_sets, seed=2026)
    seconds = time.perf_counter() - started
    section.details["contradictions"] = {
        "answer_sets": result.answer_sets,
        "declared": len(kb.synthesis.contradictions),
        "found": dict(result.found),
        "examples": {key: dict(value) for key, value in result.examples.items()},
        "seconds": round(seconds, 1),
    }
    section.add(f"contradictions over {result.answer_sets:,} random answer sets", result.total, "", 0, "<=")
    section.add("synthesis built per answer set", seconds / max(result.answer_sets, 1) * 1000, "ms")
    if workdir is not None:
        from knowledge.mutations import mutation_test

        with workdir() as tmp:
            report = mutation_test(tmp, one_by_one=one_by_one)
        section.details["mutations"] = report.as_dict()
        section.add(f"planted error kinds caught by kb check ({report.kinds})", report.catch_rate * 100, "%", 100, ">=")
    return section

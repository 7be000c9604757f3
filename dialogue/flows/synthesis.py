"""Turn flow answers into « Votre synthèse » and the legal-form guide.

Pure functions: no I/O, no channel. Answers map an answer key (a question id
of a flow) to the option id (single), the list of option ids (multiple), or
``None`` when the user explicitly skipped the question; a missing key means
the question was not answered yet. Nothing is guessed: a condition on a
missing or skipped answer is false, and a section none of whose questions has
an answer is reported as skipped.

Stored answers may come from an older version of the flows: before any rule
is evaluated, :func:`normalise_answers` drops keys of removed questions and
option ids that no longer exist, wraps a single-choice answer stored for a
question that is now multiple-choice, and carries the merged
``capital_commercial`` question over to ``besoins_formalisation``. Nothing
crashes and nothing is guessed beyond that.

The structure (stable; fields are only ever added, with defaults)
-------------------------------------------------------------------
:func:`build_synthesis` returns a :class:`Synthesis`:

- ``intro``: the opening paragraph;
- ``sections``: one :class:`SectionResult` per section of synthesis.yaml, in
  order. Each has ``id``, ``title``, ``chapter``, ``lines`` (:class:`Line`:
  ``rule_id``, ``text``, ``chapter``, ``page``), ``vigilance`` (texts),
  ``skipped``/``skipped_keys``/``missing_keys``, for the formalisation section
  ``recommendation`` (``portage_existant`` | ``association`` | ``scic`` |
  ``pas_encore``) and its lower-case ``recommendation_label``, and for the
  maturity section ``checklist`` (:class:`ChecklistResult`: the options ticked
  and not ticked). The section ``prochaines_etapes`` holds at most three lines,
  most important first;
- ``profile``: a few words per answered profile question (« PTCE de
  territoire », « maturité indicative « émergent » ») plus the legal-form
  track, for the short version;
- ``key_vigilance``: the one vigilance point the short version shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from knowledge.flows import (
    FORMALISATION_SECTION,
    NEXT_STEPS_KEPT,
    NEXT_STEPS_SECTION,
    Condition,
    Contradiction,
    Presupposition,
    Question,
    Rule,
    Section,
    SynthesisRules,
)

Answers = Mapping[str, str | list[str] | None]

NBSP = "\u00a0"
#: Longest vigilance point the short version may show (keeps the short synthesis under its limit).
VIGILANCE_MAX = 360

#: A question removed from the flows whose answer now lives in another one: old key, old option, new key, new option.
_MERGED = (("capital_commercial", "oui", "besoins_formalisation", "economique"),)
#: Options that mean « none of these » in a multiple choice: never combined with a merged option.
_NONE_OPTIONS = frozenset({"aucun", "aucune"})


# --------------------------------------------------------------------------- stored answers


def normalise_answers(questions: Mapping[str, Question], answers: Answers) -> dict[str, str | list[str] | None]:
    """The answers the current flows can read (see the module docstring); ``answers`` is not modified."""
    if not questions:
        return dict(answers)
    result: dict[str, str | list[str] | None] = {}
    for key, value in answers.items():
        question = questions.get(key)
        if question is None:
            continue
        if value is None:
            result[key] = None
            continue
        known = question.option_ids
        if question.kind == "multiple":
            chosen = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
            kept = [option for option in chosen if isinstance(option, str) and option in known]
            if kept or not chosen:
                result[key] = kept
        elif isinstance(value, str) and value in known:
            result[key] = value
        elif isinstance(value, (list, tuple)) and len(value) == 1 and value[0] in known:
            result[key] = value[0]
    for old_key, old_option, new_key, new_option in _MERGED:
        current = result.get(new_key)
        if answers.get(old_key) != old_option or new_key not in questions or new_option not in questions[new_key].option_ids:
            continue
        if new_key not in answers:
            result[new_key] = [new_option]
        elif isinstance(current, list) and new_option not in current and not _NONE_OPTIONS & set(current):
            order = questions[new_key].option_ids
            result[new_key] = sorted([*current, new_option], key=order.index)
    return result


# --------------------------------------------------------------------------- evaluation


def evaluate(condition: Condition, answers: Answers) -> bool:
    """True when ``condition`` holds for ``answers`` (unknown or skipped answers never match)."""
    op = condition.op
    if op == "always":
        return True
    if op == "all":
        return all(evaluate(child, answers) for child in condition.children)
    if op == "any":
        return any(evaluate(child, answers) for child in condition.children)
    if op == "not":
        return not evaluate(condition.children[0], answers)
    value = answers.get(condition.key) if condition.key else None
    if op == "answered":
        return condition.key in answers and value is not None
    if op == "skipped":
        return condition.key in answers and value is None
    if op in ("is", "in"):
        return isinstance(value, str) and value in condition.values
    if not isinstance(value, (list, tuple)):
        return False
    if op == "has":
        return condition.values[0] in value
    if op == "lacks":
        return condition.values[0] not in value
    if op == "count_at_least":
        return len(value) >= condition.number
    if op == "count_at_most":
        return len(value) <= condition.number
    raise ValueError(f"unknown condition operator {op!r}")


def decided(condition: Condition, answers: Answers) -> bool | None:
    """``condition`` as far as the answers given decide it: None when it depends on an answer not given."""
    op = condition.op
    if op in ("always", "answered", "skipped"):
        return evaluate(condition, answers)
    if op in ("all", "any"):
        results = [decided(child, answers) for child in condition.children]
        stop = op == "any"  # True decides an « any », False decides an « all »
        if stop in results:
            return stop
        return None if None in results else not stop
    if op == "not":
        inner = decided(condition.children[0], answers)
        return None if inner is None else not inner
    if answers.get(condition.key or "") is None:
        return None
    return evaluate(condition, answers)


def presupposition_holds(assumes: Presupposition | None, route: str | None, answers: Answers) -> bool:
    """False only when the route or an answer given contradicts what the statement takes for granted."""
    if assumes is None:
        return True
    if assumes.routes and route is not None and route not in assumes.routes:
        return False
    return assumes.answers is None or decided(assumes.answers, answers) is not False


@dataclass(frozen=True, slots=True)
class ConflictResult:
    """Answers of this user that contradict each other, and the questions to revisit."""

    id: str
    text: str
    revisit: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Line:
    """One finding of a section, from one rule."""

    rule_id: str
    text: str
    chapter: str
    page: int = 0


@dataclass(frozen=True, slots=True)
class ChecklistResult:
    """The options of one multiple-choice answer, ticked and not ticked (labels, in the question's order)."""

    present_title: str
    present: tuple[str, ...]
    absent_title: str
    absent: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SectionResult:
    id: str
    title: str
    chapter: str
    lines: tuple[Line, ...]
    vigilance: tuple[str, ...]
    skipped: bool  # no question of the section has an answer: nothing is concluded
    skipped_keys: tuple[str, ...]  # explicitly skipped questions
    missing_keys: tuple[str, ...]  # questions not answered yet
    recommendation: str | None = None  # formalisation section only
    recommendation_label: str | None = None
    checklist: ChecklistResult | None = None
    #: Each vigilance point with the chapter and page of the rule that gave it (same order as ``vigilance``).
    vigilance_lines: tuple[Line, ...] = ()

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(line.rule_id for line in self.lines)

    @property
    def partial(self) -> bool:
        """Answered, but some of the section's questions were explicitly skipped.

        Missing keys do not count: they may belong to another flow (the
        legal-form guide asks questions the orientation flow does not).
        """
        return not self.skipped and bool(self.skipped_keys)

    @property
    def explicitly_skipped(self) -> bool:
        """Skipped with at least one « Passer » (rather than simply not reached)."""
        return self.skipped and bool(self.skipped_keys)


@dataclass(frozen=True, slots=True)
class Synthesis:
    intro: str
    sections: tuple[SectionResult, ...]
    #: Short phrases describing the user (typology, indicative maturity, legal-form track).
    profile: tuple[str, ...] = ()
    #: The vigilance point the short version shows (None when no answer calls for one).
    key_vigilance: str | None = None
    #: Answers that contradict each other, pointed out before any finding.
    conflicts: tuple[ConflictResult, ...] = ()

    def section(self, section_id: str) -> SectionResult | None:
        for section in self.sections:
            if section.id == section_id:
                return section
        return None

    @property
    def recommendation(self) -> str | None:
        section = self.section(FORMALISATION_SECTION)
        return section.recommendation if section else None

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Every rule shown in the synthesis, in order."""
        return tuple(rule_id for section in self.sections for rule_id in section.rule_ids)

    @property
    def all_skipped(self) -> bool:
        return all(section.skipped for section in self.sections)


def _has_answer(answers: Answers, key: str) -> bool:
    return answers.get(key) is not None


def _checklist(section: Section, rules: SynthesisRules, answers: Answers) -> ChecklistResult | None:
    spec = section.checklist
    question = rules.questions.get(spec.key) if spec else None
    value = answers.get(spec.key) if spec else None
    if spec is None or question is None or not isinstance(value, list):
        return None
    options = [option for option in question.options if option.id not in _NONE_OPTIONS]
    present = tuple(option.label for option in options if option.id in value)
    absent = tuple(option.label for option in options if option.id not in value)
    return ChecklistResult(spec.present, present, spec.absent, absent)


def _applies(rule: Rule, answers: Answers, route: str | None) -> bool:
    return evaluate(rule.when, answers) and presupposition_holds(rule.assumes, route, answers)


def _build_section(section: Section, rules: SynthesisRules, answers: Answers, route: str | None) -> SectionResult:
    skipped_keys = tuple(key for key in section.questions if key in answers and answers[key] is None)
    missing_keys = tuple(key for key in section.questions if key not in answers)
    skipped = bool(section.questions) and not any(_has_answer(answers, key) for key in section.questions)
    lines: list[Line] = []
    vigilance: list[str] = []
    vigilance_lines: list[Line] = []
    recommendation = None
    if not skipped:
        limit = NEXT_STEPS_KEPT if section.id == NEXT_STEPS_SECTION else None
        for rule in section.rules:
            if not _applies(rule, answers, route):
                continue
            lines.append(Line(rule.id, rule.text, rule.chapter, rule.page))
            for point in rule.vigilance:
                if point not in vigilance:
                    vigilance.append(point)
                    vigilance_lines.append(Line(rule.id, point, rule.chapter, rule.page))
            if recommendation is None and rule.recommend:
                recommendation = rule.recommend
            if section.mode == "first" or (limit is not None and len(lines) >= limit):
                break
    return SectionResult(
        id=section.id,
        title=section.title,
        chapter=section.chapter,
        lines=tuple(lines),
        vigilance=tuple(vigilance),
        skipped=skipped,
        skipped_keys=skipped_keys,
        missing_keys=missing_keys,
        recommendation=recommendation,
        recommendation_label=rules.recommendations.get(recommendation) if recommendation else None,
        checklist=None if skipped else _checklist(section, rules, answers),
        vigilance_lines=tuple(vigilance_lines),
    )


def build_synthesis(rules: SynthesisRules, answers: Answers) -> Synthesis:
    """Apply the rules to the answers, section by section, in the file's order.

    ``answers`` may hold answers stored by older flows: see :func:`normalise_answers`.
    """
    answers = normalise_answers(rules.questions, answers)
    # The route comes first: the document makes every later piece of advice depend on it.
    route_rules = rules.section(FORMALISATION_SECTION)
    route = _build_section(route_rules, rules, answers, None).recommendation if route_rules else None
    sections = tuple(_build_section(section, rules, answers, route) for section in rules.sections)
    shorts = {rule.id: rule.short for rule in rules.rules() if rule.short}
    profile = [shorts[line.rule_id] for section in sections for line in section.lines if line.rule_id in shorts]
    formalisation = next((s for s in sections if s.id == FORMALISATION_SECTION), None)
    if formalisation is not None and formalisation.recommendation_label:
        profile.append(f"piste de formalisation{NBSP}: {formalisation.recommendation_label}")
    by_id = {section.id: section for section in sections}
    points = [point for sid in rules.short_vigilance if sid in by_id for point in by_id[sid].vigilance]
    fitting = [point for point in points if len(point) <= VIGILANCE_MAX]
    conflicts = tuple(
        ConflictResult(conflict.id, conflict.text, conflict.revisit)
        for conflict in rules.conflicts
        if evaluate(conflict.when, answers)
    )
    return Synthesis(rules.intro, sections, tuple(profile), fitting[0] if fitting else None, conflicts)


def contradictions(rules: SynthesisRules, synthesis: Synthesis, answers: Answers) -> list[Contradiction]:
    """The declared contradictions this synthesis shows (the scan of the tests and benchmarks wants none)."""
    answers = normalise_answers(rules.questions, answers)
    shown = set(synthesis.rule_ids)
    route = synthesis.recommendation
    return [
        found
        for found in rules.contradictions
        if set(found.shown) <= shown
        and (not found.routes or route in found.routes)
        and (found.when is None or evaluate(found.when, answers))
    ]


# --------------------------------------------------------------------------- rendering

"""The guided flows (``flows/*.yaml``) and the synthesis rules (``synthesis.yaml``) as frozen data.

Pure data: it knows nothing about states or transitions (the dialogue engine does) nor about
evaluating answers (``dialogue/flows/synthesis.py`` does). The files are read and validated
by :mod:`knowledge.flows_loader` and :mod:`knowledge.synthesis_loader`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

LABEL_MAX = 40
#: Longest profile phrase (``short``) of a rule.
SHORT_MAX = 80
OPTION_ID = re.compile(r"^[a-z0-9_]{1,20}$")
ENTRY_ID = re.compile(r"^[a-z0-9_]{1,24}$")

KINDS = ("single", "multiple")
RESULTS = ("synthesis", "formes")
MODES = ("all", "first")

#: The legal-form recommendations a rule of the ``formalisation`` section may give.
RECOMMENDATIONS = ("portage_existant", "association", "scic", "pas_encore")
#: Section whose rules carry a ``recommend`` (and only there).
FORMALISATION_SECTION = "formalisation"
#: Section listing candidate next steps; the synthesis keeps the first ones that match.
NEXT_STEPS_SECTION = "prochaines_etapes"
#: How many next steps the synthesis keeps.
NEXT_STEPS_KEPT = 3

Kind = Literal["single", "multiple"]


# --------------------------------------------------------------------------- flows


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    label: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Question:
    id: str  # the answer key, shared between flows
    text: str
    kind: Kind
    options: tuple[Option, ...]

    def option(self, option_id: str) -> Option | None:
        for option in self.options:
            if option.id == option_id:
                return option
        return None

    @property
    def option_ids(self) -> tuple[str, ...]:
        return tuple(option.id for option in self.options)


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    title: str
    topic: str | None
    questions: tuple[Question, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Side-by-side comparison of legal forms (``formes`` flow).

    ``columns`` are ``(id, label)`` pairs; the ids of the legal-form guide
    are recommendation values (``portage_existant``, ``association``,
    ``scic``) so that the recommended column can be highlighted.
    ``rows`` are ``(criterion, {column_id: text})`` pairs, every column filled.
    """

    title: str
    chapter: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[str, Mapping[str, str]], ...]


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    title: str
    intro: str
    outro: str
    result: Literal["synthesis", "formes"]
    steps: tuple[Step, ...]
    comparison: Comparison | None = None

    def questions(self) -> tuple[tuple[Step, Question], ...]:
        """Every (step, question) pair, in the order they are asked."""
        return tuple((step, question) for step in self.steps for question in step.questions)

    def question(self, question_id: str) -> Question | None:
        for _step, question in self.questions():
            if question.id == question_id:
                return question
        return None

    def step_of(self, question_id: str) -> Step | None:
        for step, question in self.questions():
            if question.id == question_id:
                return step
        return None


def answer_keys(flows: Mapping[str, Flow]) -> dict[str, Question]:
    """All questions of all flows by answer key (shared keys are consistent once loaded)."""
    questions: dict[str, Question] = {}
    for flow in flows.values():
        for _step, question in flow.questions():
            questions.setdefault(question.id, question)
    return questions


# --------------------------------------------------------------------------- synthesis rules


@dataclass(frozen=True, slots=True)
class Condition:
    """One node of a rule's ``when`` tree.

    ``op`` is one of: ``is`` / ``in`` (``values``), ``has`` / ``lacks``
    (``values`` holds the one option), ``count_at_least`` / ``count_at_most``
    (``number``), ``answered``, ``skipped``, ``all`` / ``any`` (``children``),
    ``not`` (one child), ``always``.
    """

    op: str
    key: str | None = None
    values: tuple[str, ...] = ()
    number: int = 0
    children: tuple[Condition, ...] = ()

    def keys(self) -> set[str]:
        """Answer keys read by this condition and its children."""
        found = {self.key} if self.key else set()
        for child in self.children:
            found |= child.keys()
        return found


ALWAYS = Condition("always")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    when: Condition
    text: str
    chapter: str
    vigilance: tuple[str, ...] = ()
    recommend: str | None = None
    #: Page of the document the rule rests on (0 when the YAML gives none).
    page: int = 0
    #: A few words for the profile line of the short synthesis (« PTCE de territoire »).
    short: str = ""
    #: What the statement takes for granted (see :class:`Presupposition`); never shown when it is false.
    assumes: Presupposition | None = None


@dataclass(frozen=True, slots=True)
class Presupposition:
    """What a statement takes for granted about this user: a legal-form route and answers.

    ``routes``: the statement only makes sense when the formalisation route is one of these
    (an unknown route does not contradict it). ``answers``: a condition on answers given
    anywhere in the flows; only answers actually given can contradict it (three-valued).
    """

    routes: tuple[str, ...] = ()
    answers: Condition | None = None


@dataclass(frozen=True, slots=True)
class Conflict:
    """Answers that cannot all be true: pointed out to the user, with the questions to revisit."""

    id: str
    when: Condition
    text: str
    revisit: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Contradiction:
    """Statements that must never be shown together (checked over the whole answer space).

    It holds when every rule of ``shown`` is shown, the route is one of ``routes`` (when
    given) and ``when`` holds for the answers (when given).
    """

    id: str
    shown: tuple[str, ...]
    routes: tuple[str, ...] = ()
    when: Condition | None = None
    why: str = ""


@dataclass(frozen=True, slots=True)
class Checklist:
    """A multiple-choice answer shown as two lists: options ticked and options not ticked."""

    key: str
    present: str  # heading of the ticked options (« Établis selon vous »)
    absent: str  # heading of the others (« Pas encore établis »)


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    chapter: str
    questions: tuple[str, ...]
    mode: Literal["all", "first"]
    rules: tuple[Rule, ...]
    #: Answers the rules may also read without being the section's own questions: they never
    #: make the section « answered » (a section is skipped when all of ``questions`` are).
    context: tuple[str, ...] = ()
    checklist: Checklist | None = None


@dataclass(frozen=True, slots=True)
class SynthesisRules:
    intro: str
    recommendations: Mapping[str, str]  # recommendation value -> French label
    sections: tuple[Section, ...]
    #: Every flow question by answer key: lets the synthesis read stored answers of older flows safely.
    questions: Mapping[str, Question] = field(default_factory=dict)
    #: Sections whose first vigilance point the short synthesis may show, in order of priority.
    short_vigilance: tuple[str, ...] = ()
    #: Answer combinations that contradict each other: the user is asked to correct them.
    conflicts: tuple[Conflict, ...] = ()
    #: Statement combinations that must never be shown together (the contradiction scan).
    contradictions: tuple[Contradiction, ...] = ()

    def section(self, section_id: str) -> Section | None:
        for section in self.sections:
            if section.id == section_id:
                return section
        return None

    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for section in self.sections for rule in section.rules)


# --------------------------------------------------------------------------- validation helpers

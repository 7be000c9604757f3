"""« Regards croisés »: aggregate a collective's orientation answers. Pure functions, no I/O.

The measure of agreement
------------------------
For a single-choice question, the agreement is the **share of the majority
answer** among the members who answered it (skipped questions do not count):
4 members out of 5 giving the same answer is 80 %.

For a multiple-choice question, each option is a yes/no question (« ticked or
not »): its agreement is the share of the larger camp (3 ticks out of 4 is
75 %, and so is 1 tick out of 4). The question's agreement is the mean of its
options' agreements, and each option whose own agreement is below the
threshold is named as a point of divergence.

A question is an **agreement** when this share reaches :data:`AGREEMENT_THRESHOLD`
(two thirds) and a **divergence** otherwise. Divergences are listed most
divergent first (lowest agreement), ties broken by the order of the questions.

Anonymity
---------
No distribution is computed for a question unless at least :data:`MIN_ANSWERS`
members **other than the viewer** answered it (the viewer knows their own answer, so
it cannot hide anyone else's): it is reported as « pas assez de réponses », and it is
left out of the majority answers too (a majority of one or two people would reveal
their answers). Individual answers never leave this module: only counts. The counts
themselves are published in batches (:mod:`~dialogue.features.collective.publication`),
so that looking before and after one member answers shows no difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dialogue.flows.synthesis import Synthesis, build_synthesis
from knowledge.debate import DebatePoint
from knowledge.flows import Condition, SynthesisRules

AnswerValue = str | list[str] | None
Answers = Mapping[str, AnswerValue]

#: Fewer answers than this: no distribution, no majority.
MIN_ANSWERS = 3
#: Share of the majority from which a question counts as an agreement.
AGREEMENT_THRESHOLD = 2 / 3


@dataclass(frozen=True, slots=True)
class QuestionSpec:
    """What aggregation needs to know about one question of the orientation."""

    id: str
    text: str
    kind: str  # "single" | "multiple"
    options: tuple[tuple[str, str], ...]  # (option id, label)
    step_title: str = ""


@dataclass(frozen=True, slots=True)
class OptionCount:
    id: str
    label: str
    count: int  # members who chose (single) or ticked (multiple) this option
    share: float  # count / answered
    agreement: float  # multiple choice: share of the larger camp; single: equals share


@dataclass(frozen=True, slots=True)
class QuestionSpread:
    question: QuestionSpec
    answered: int  # members with a non-skipped answer
    skipped: int
    options: tuple[OptionCount, ...]  # empty when below the anonymity threshold
    agreement: float | None  # None when below the anonymity threshold
    majority: AnswerValue  # the group's answer for the synthesis; None when there is none
    has_majority: bool

    @property
    def enough(self) -> bool:
        return self.agreement is not None

    @property
    def agrees(self) -> bool:
        return self.agreement is not None and self.agreement >= AGREEMENT_THRESHOLD

    @property
    def diverges(self) -> bool:
        return self.agreement is not None and self.agreement < AGREEMENT_THRESHOLD

    @property
    def contested_options(self) -> tuple[OptionCount, ...]:
        """Multiple choice: the options on which the group is split."""
        if self.question.kind != "multiple":
            return ()
        return tuple(o for o in self.options if o.agreement < AGREEMENT_THRESHOLD)


@dataclass(frozen=True, slots=True)
class Participation:
    invited: int  # people who opened an invitation
    joined: int  # members now (the coordinator included)
    answering: int  # members whose orientation counts for this collective and who answered at least once
    finished: int  # of those, answered (or skipped) every question


@dataclass(frozen=True, slots=True)
class GroupProfile:
    """Everything a group view (chat or report) shows, with no individual answer in it."""

    participation: Participation
    spreads: tuple[QuestionSpread, ...]  # in the order of the orientation

    @property
    def agreements(self) -> tuple[QuestionSpread, ...]:
        return tuple(s for s in self.spreads if s.agrees)

    @property
    def divergences(self) -> tuple[QuestionSpread, ...]:
        """Most divergent first; ties keep the orientation's order."""
        order = {s.question.id: index for index, s in enumerate(self.spreads)}
        return tuple(sorted((s for s in self.spreads if s.diverges), key=lambda s: (s.agreement, order[s.question.id])))

    @property
    def too_few(self) -> tuple[QuestionSpread, ...]:
        return tuple(s for s in self.spreads if not s.enough)

    def majority_answers(self) -> dict[str, AnswerValue]:
        """Answer key → the group's majority answer, for questions with a majority and enough answers."""
        return {s.question.id: s.majority for s in self.spreads if s.has_majority}

    def spread(self, question_id: str) -> QuestionSpread | None:
        for spread in self.spreads:
            if spread.question.id == question_id:
                return spread
        return None


@dataclass(frozen=True, slots=True)
class Tally:
    """One question's counts: what is published, never who answered what."""

    counts: Mapping[str, int]  # option id → members who chose (single) or ticked (multiple) it
    answered: int
    skipped: int


def tally(question: QuestionSpec, values: Sequence[AnswerValue]) -> Tally:
    """Count the members' values for ``question`` (``None``: skipped)."""
    given = [v for v in values if v is not None]
    counts = dict.fromkeys((option_id for option_id, _ in question.options), 0)
    for value in given:
        if question.kind == "multiple":
            # a single value was stored when the question was single-choice
            chosen = set(value) if isinstance(value, list) else {value} if isinstance(value, str) else set()
        else:
            chosen = {value} if isinstance(value, str) else set()
        for option_id in chosen:
            if option_id in counts:
                counts[option_id] += 1
    return Tally(counts, len(given), len(values) - len(given))


def _spread(question: QuestionSpec, values: Sequence[AnswerValue]) -> QuestionSpread:
    return spread_of(question, tally(question, values))


def spread_of(question: QuestionSpec, counted: Tally, *, viewer_counted: bool = False) -> QuestionSpread:
    """The spread shown for ``counted``; nothing but the totals unless :data:`MIN_ANSWERS` answers
    other than the viewer's own (``viewer_counted``) are in it."""
    answered, skipped = counted.answered, counted.skipped
    if answered - int(viewer_counted) < MIN_ANSWERS:
        return QuestionSpread(question, answered, skipped, (), None, None, False)
    counts = {oid: int(counted.counts.get(oid, 0)) for oid, _ in question.options}
    if question.kind == "multiple":
        options = tuple(
            OptionCount(oid, label, counts[oid], counts[oid] / answered, max(counts[oid], answered - counts[oid]) / answered)
            for oid, label in question.options
        )
        agreement = sum(o.agreement for o in options) / len(options) if options else 1.0
        majority: AnswerValue = [o.id for o in options if o.count * 2 > answered]
        return QuestionSpread(question, answered, skipped, options, agreement, majority, True)
    options = tuple(OptionCount(oid, label, counts[oid], counts[oid] / answered, counts[oid] / answered) for oid, label in question.options)
    top = max(counts.values()) if counts else 0
    leaders = [oid for oid, count in counts.items() if count == top]
    agreement = top / answered
    if len(leaders) == 1:
        return QuestionSpread(question, answered, skipped, options, agreement, leaders[0], True)
    return QuestionSpread(question, answered, skipped, options, agreement, None, False)


def aggregate(
    questions: Sequence[QuestionSpec],
    member_answers: Iterable[Answers],
    *,
    invited: int,
    joined: int,
) -> GroupProfile:
    """The group profile of the members whose orientation counts for the collective.

    ``member_answers`` holds one mapping per counted member (answer key → value,
    ``None`` for a skipped question, key absent when not answered yet).
    """
    members = list(member_answers)
    ids = [q.id for q in questions]
    answering = [a for a in members if any(key in a for key in ids)]
    finished = sum(1 for a in answering if all(key in a for key in ids))
    spreads = tuple(_spread(q, [a[q.id] for a in answering if q.id in a]) for q in questions)
    return GroupProfile(Participation(invited, joined, len(answering), finished), spreads)


# --------------------------------------------------------------------------- group synthesis


@dataclass(frozen=True, slots=True)
class GroupSynthesis:
    synthesis: Synthesis
    #: rule id → the questions its condition reads that divide the group (divergent, or an option it reads is contested)
    contested_rules: Mapping[str, tuple[QuestionSpread, ...]]
    #: section id → the divergent questions among the section's questions
    contested_sections: Mapping[str, tuple[QuestionSpread, ...]]


def _options_read(condition: Condition) -> dict[str, set[str]]:
    """Answer key → the options a condition names (none for counts, « answered », « skipped »)."""
    found: dict[str, set[str]] = {}
    if condition.key:
        found[condition.key] = set(condition.values) if condition.op in ("is", "in", "has", "lacks") else set()
    for child in condition.children:
        for key, options in _options_read(child).items():
            found[key] = found.get(key, set()) | options
    return found


def _rule_contested(condition: Condition, spreads: Mapping[str, QuestionSpread]) -> tuple[QuestionSpread, ...]:
    """The questions a rule reads on which the group is split: the whole question, or an option the rule names."""
    contested = []
    for key, options in sorted(_options_read(condition).items()):
        spread = spreads.get(key)
        if spread is None or not spread.enough:
            continue
        if spread.diverges or options & {o.id for o in spread.contested_options}:
            contested.append(spread)
    return tuple(contested)


def group_synthesis(rules: SynthesisRules, profile: GroupProfile) -> GroupSynthesis:
    """The personal synthesis rules applied to the majority answers, with the divergences they rest on."""
    synthesis = build_synthesis(rules, profile.majority_answers())
    spreads = {s.question.id: s for s in profile.spreads}
    divergent = {s.question.id: s for s in profile.divergences}
    conditions = {rule.id: rule.when for rule in rules.rules()}
    section_questions = {section.id: section.questions for section in rules.sections}
    contested_rules: dict[str, tuple[QuestionSpread, ...]] = {}
    contested_sections: dict[str, tuple[QuestionSpread, ...]] = {}
    for section in synthesis.sections:
        for line in section.lines:
            condition = conditions.get(line.rule_id)
            found = _rule_contested(condition, spreads) if condition is not None else ()
            if found:
                contested_rules[line.rule_id] = found
        found = tuple(divergent[k] for k in section_questions.get(section.id, ()) if k in divergent)
        if found:
            contested_sections[section.id] = found
    return GroupSynthesis(synthesis, contested_rules, contested_sections)


def debate_points(profile: GroupProfile, points: Sequence[DebatePoint], *, limit: int = 3) -> list[tuple[DebatePoint, QuestionSpread]]:
    """For the most divergent questions, the debate points that concern them (each point once)."""
    chosen: list[tuple[DebatePoint, QuestionSpread]] = []
    seen: set[str] = set()
    for spread in profile.divergences:
        for point in points:
            if spread.question.id in point.questions and point.id not in seen:
                chosen.append((point, spread))
                seen.add(point.id)
                break
        if len(chosen) >= limit:
            break
    return chosen

"""What the report says, gathered from the engine's own data (no layout, no heavy import).

The same objects the chat uses: the :class:`~dialogue.flows.synthesis.Synthesis`
built from the user's answers, the flows' questions and options, the
legal-form comparison and the document's chapters for citations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from dialogue.flows import synthesis as syn
from dialogue.texts import typeset
from knowledge.flows import FORMALISATION_SECTION, NEXT_STEPS_SECTION
from knowledge.loader import KnowledgeBase

NBSP = "\u00a0"
#: fpdf2 prints U+00A0 as a plain space in the PDF's text layer (it only keeps it from breaking), so the
#: report uses the narrow no-break space of French typography, which survives copy-paste and search.
NNBSP = "\u202f"
SHORT_MAX = 1200
TITLE = "Synthèse d’orientation"
LEGAL = "formes"
MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)
SKIPPED = "Question passée"
MISSING = "Pas encore de réponse"
NOTHING_TO_REPORT = (
    "Vous n’avez encore répondu à aucune question : il n’y a rien à mettre dans le document. "
    "Faites d’abord le parcours d’orientation (/orientation), puis demandez le document."
)


class EmptyReport(ValueError):
    """No question has an answer: there is nothing to put in a report."""


@dataclass(frozen=True, slots=True)
class SectionView:
    title: str
    citation: str
    recommendation: str | None
    lines: tuple[str, ...]
    note: str | None  # why nothing is concluded, or that some answers are missing


@dataclass(frozen=True, slots=True)
class Cited:
    text: str
    citation: str


@dataclass(frozen=True, slots=True)
class AnswerView:
    question: str
    answer: str
    answered: bool


@dataclass(frozen=True, slots=True)
class StepView:
    title: str
    answers: tuple[AnswerView, ...]


@dataclass(frozen=True, slots=True)
class LegalView:
    recommendation: str | None
    reasons: tuple[str, ...]
    citation: str
    table_title: str
    columns: tuple[str, ...]
    recommended_column: int | None
    rows: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class ReportContent:
    title: str
    ptce_name: str
    date_text: str
    day: date
    reference: str
    footer: str
    intro: str
    short: tuple[str, ...]
    sections: tuple[SectionView, ...]
    next_steps: tuple[Cited, ...]
    vigilance: tuple[Cited, ...]
    answers: tuple[tuple[str, tuple[StepView, ...]], ...]  # (flow title, its steps)
    legal: LegalView | None


def french_date(day: date) -> str:
    return f"{day.day}{'er' if day.day == 1 else ''} {MONTHS[day.month - 1]} {day.year}"


def has_answers(answers: Mapping[str, Any]) -> bool:
    return any(value is not None for value in answers.values())


def _escape(text: str) -> str:
    """Keep the synthesis' ``**bold**`` but let fpdf2's other markdown markers print as text."""
    for marker in ("--", "__", "~~"):
        text = text.replace(marker, "\\" + marker)
    return text


def french_spacing(text: str) -> str:
    """French no-break spaces, bold segment by bold segment (``typeset`` alone misses « … »** )."""
    return "**".join(typeset(part) for part in text.split("**")).replace(NBSP, NNBSP)


def printable(text: str) -> str:
    """One line of report text: spaces folded, French spacing, the PDF's own markup escaped."""
    return _escape(french_spacing(" ".join(text.split())))


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?…])(\s|$)", text)
    return match.group(1) if match else text


def _short_from_render(synthesis: syn.Synthesis) -> list[str] | None:
    """The chat's own short version: the same statements and citations (« Voir le détail » is chat-only)."""
    from dialogue.flows.synthesis_text import SHORT_TITLE, render_short

    text = render_short(synthesis).replace("⚠️ ", "").replace("⚠️", "")
    lines = [line.strip() for line in text.split("\n")]
    return [
        line
        for line in lines
        if line and line != f"**{SHORT_TITLE}**" and "voir le détail" not in line.casefold()
    ]


def short_synthesis(synthesis: syn.Synthesis) -> list[str]:
    """At most SHORT_MAX characters: the recommendation, then each step's first finding."""
    rendered = _short_from_render(synthesis)
    if rendered is not None:
        return [printable(line) for line in rendered]
    lines: list[str] = []
    total = 0
    if synthesis.recommendation is not None:
        formalisation = synthesis.section(FORMALISATION_SECTION)
        label = formalisation.recommendation_label if formalisation else None
        lines.append(f"Piste de formalisation qui ressort de vos réponses{NBSP}: **{label}**.")
        total += len(lines[-1])
    for section in synthesis.sections:
        if section.id == NEXT_STEPS_SECTION or section.skipped or not section.lines:
            continue
        line = f"- **{section.title}**{NBSP}: {_first_sentence(' '.join(section.lines[0].text.split()))}"
        if total + len(line) > SHORT_MAX:
            break
        lines.append(line)
        total += len(line)
    return [printable(line) for line in lines]


def _cite(kb: KnowledgeBase, line: syn.Line, section_chapter: str | None = None) -> str:
    """The one citation of a finding, the same page in the chat, on the report's first page and further on.

    « p. 18 » under a heading of the same chapter, « chap. 09, p. 21 » otherwise.
    """
    page = line.page or kb.document.chapters[line.chapter].page
    if line.chapter == section_chapter:
        return f"p.{NBSP}{page}"
    return f"chap.{NBSP}{line.chapter}, p.{NBSP}{page}"


def _section_view(kb: KnowledgeBase, section: syn.SectionResult) -> SectionView:
    citation = kb.document.cite_chapter(section.chapter)
    if section.skipped:
        skipped = f"Étape passée{NBSP}: sans réponse à ses questions, nous n’en tirons aucune conclusion."
        return SectionView(section.title, citation, None, (), printable(skipped))
    lines = []
    for line in section.lines:
        text = " ".join(line.text.split())
        lines.append(printable(f"{text} ({_cite(kb, line, section.chapter)})"))
    note: str | None = None
    if not section.lines:
        note = "Vos réponses à cette étape n’appellent pas de remarque particulière."
    elif section.partial:
        note = f"Certaines questions de cette étape sont restées sans réponse{NBSP}: ce constat ne porte que sur vos réponses."
    return SectionView(section.title, citation, section.recommendation_label, tuple(lines), note and printable(note))


_HINT = re.compile(r"\s*\((?:auto-évaluation, )?plusieurs choix possibles\)")


def _question_text(question) -> str:
    """The question as asked, without the chat's « (plusieurs choix possibles) » hint."""
    return printable(_HINT.sub("", question.text))


def _answer_text(question, value) -> str:
    labels = {option.id: option.label for option in question.options}
    if isinstance(value, (list, tuple)):
        return ", ".join(labels.get(v, str(v)) for v in value) if value else "Aucune case cochée"
    return labels.get(value, str(value))


def _answers(kb: KnowledgeBase, answers: Mapping[str, Any]) -> tuple[tuple[str, tuple[StepView, ...]], ...]:
    """Every question of each flow the user started, once, in the flows' order."""
    shown: set[str] = set()
    groups = []
    flows = sorted(kb.flows.values(), key=lambda flow: flow.id != "orientation")
    for flow in flows:
        keys = [q.id for step in flow.steps for q in step.questions if q.id not in shown]
        if not any(key in answers for key in keys):
            continue
        steps = []
        for step in flow.steps:
            rows = []
            for question in step.questions:
                if question.id in shown:
                    continue
                shown.add(question.id)
                if question.id not in answers:
                    continue  # only what the user answered (or passed)
                if answers[question.id] is None:
                    rows.append(AnswerView(_question_text(question), SKIPPED, False))
                else:
                    rows.append(AnswerView(_question_text(question), printable(_answer_text(question, answers[question.id])), True))
            if rows:
                steps.append(StepView(step.title, tuple(rows)))
        groups.append((flow.title, tuple(steps)))
    return tuple(groups)


def _legal(kb: KnowledgeBase, synthesis: syn.Synthesis) -> LegalView | None:
    flow = kb.flows.get(LEGAL)
    comparison = getattr(flow, "comparison", None)
    if comparison is None:
        return None
    section = synthesis.section(FORMALISATION_SECTION)
    reasons: tuple[str, ...] = ()
    if section is not None and not section.skipped and section.recommendation_label:
        reasons = tuple(printable(line.text) for line in section.lines)
    column_ids = [column for column, _ in comparison.columns]
    recommended = synthesis.recommendation
    return LegalView(
        recommendation=section.recommendation_label if section is not None else None,
        reasons=reasons,
        citation=kb.document.cite_chapter(comparison.chapter),
        table_title=comparison.title,
        columns=tuple(label for _, label in comparison.columns),
        recommended_column=column_ids.index(recommended) if recommended in column_ids else None,
        rows=tuple(
            (printable(criterion), tuple(printable(cells.get(column, "")) for column in column_ids))
            for criterion, cells in comparison.rows
        ),
    )


def _legal_started(kb: KnowledgeBase, answers: Mapping[str, Any]) -> bool:
    """Some question asked only by the legal-form guide has an answer."""
    flow = kb.flows.get(LEGAL)
    if flow is None:
        return False
    others = {q.id for f in kb.flows.values() if f.id != LEGAL for s in f.steps for q in s.questions}
    return any(q.id in answers for s in flow.steps for q in s.questions if q.id not in others)


def build_content(kb: KnowledgeBase, answers: Mapping[str, Any], *, kind: str, ptce_name: str, day: date) -> ReportContent:
    if not has_answers(answers):
        raise EmptyReport(NOTHING_TO_REPORT)
    synthesis = syn.build_synthesis(kb.synthesis, answers)
    document = kb.document
    name = " ".join(ptce_name.split())
    # Only what the user answered: a step never reached is left out (a step passed says so).
    sections = tuple(
        _section_view(kb, s)
        for s in synthesis.sections
        if s.id != NEXT_STEPS_SECTION and (not s.skipped or s.explicitly_skipped)
    )
    next_steps: tuple[Cited, ...] = ()
    steps_section = synthesis.section(NEXT_STEPS_SECTION)
    if steps_section is not None and not steps_section.skipped:
        next_steps = tuple(Cited(printable(line.text), _cite(kb, line)) for line in steps_section.lines)
    vigilance: list[Cited] = []
    seen: set[str] = set()
    for section in synthesis.sections:
        for point in section.vigilance_lines:
            if point.text not in seen:
                seen.add(point.text)
                vigilance.append(Cited(printable(point.text), _cite(kb, point)))
    legal = _legal(kb, synthesis) if kind == LEGAL or _legal_started(kb, answers) else None
    return ReportContent(
        title=french_spacing(f"{TITLE} — {name}" if name else TITLE),
        ptce_name=name,
        date_text=french_date(day),
        day=day,
        reference=french_spacing(f"{document.publisher}, « {document.title} », document non daté."),
        footer=french_spacing(f"Établi à partir de « {document.title} » ({document.publisher}) — ne remplace pas un accompagnement."),
        intro=printable(synthesis.intro),
        short=tuple(short_synthesis(synthesis)),
        sections=sections,
        next_steps=next_steps,
        vigilance=tuple(vigilance),
        answers=_answers(kb, answers),
        legal=legal,
    )

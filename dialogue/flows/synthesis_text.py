"""The personal synthesis as chat text: short first, then every section, then the legal guide.

Rendering
---------
:func:`render_short` gives the opening message (≤ :data:`SHORT_MAX`
characters: profile, three next steps, one vigilance point);
:func:`render_full` (alias :func:`render_synthesis`) gives every section, cut
into chat messages of at most :data:`MAX_MESSAGE` characters. Both use the
light markup of :mod:`dialogue.types` (``**bold**``, ``- `` lists). Every line
cites its page, and its chapter when it differs from the section's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from dialogue.flows.synthesis import NBSP, ConflictResult, Line, SectionResult, Synthesis
from knowledge.flows import FORMALISATION_SECTION, NEXT_STEPS_SECTION, Comparison, Question

#: Longest page of a long result (Telegram allows 4 096): about one phone screen of reading per
#: page, so that the detailed synthesis comes step by step with « Suite ».
MAX_MESSAGE = 2800
#: Longest short synthesis (the message that opens the result).
SHORT_MAX = 1200

TITLE = "Votre synthèse"
SHORT_TITLE = "Votre synthèse en bref"
LEGAL_TITLE = "Guide des formes juridiques"
#: Label of the button that opens the full synthesis after the short one.
DETAIL_BUTTON = "Voir le détail"

#: Longest label of a « Revoir » button (a question's text, cut at a word).
REVISIT_LABEL_MAX = 48


def conflict_block(conflicts: Sequence[ConflictResult]) -> str:
    """Answers that contradict each other, said before any finding, with what to do about it."""
    if not conflicts:
        return ""
    title = "Deux de vos réponses se contredisent" if len(conflicts) == 1 else "Certaines de vos réponses se contredisent"
    lines = [f"⚠️ **{title}**", *(f"- {conflict.text}" for conflict in conflicts)]
    lines.append(
        f"Les constats qui dépendent de ces réponses ne sont pas affichés{NBSP}: corrigez celle qui ne convient "
        f"pas (boutons «{NBSP}Revoir{NBSP}» ci-dessous), la synthèse se mettra à jour."
    )
    return "\n".join(lines)


def revisit_label(question: Question) -> str:
    """« Revoir : Qui emploie la personne chargée… » (fits a button)."""
    text = question.text.rstrip(" ?").replace("(plusieurs choix possibles)", "").strip()
    room = REVISIT_LABEL_MAX - len(f"Revoir{NBSP}: ")
    if len(text) > room:
        text = text[: text.rfind(" ", 0, room - 1)].rstrip(" ,;:") + "…"
    return f"Revoir{NBSP}: {text}"


def revisit_questions(synthesis: Synthesis) -> list[str]:
    """The questions to revisit, each once, in the order the conflicts name them."""
    return list(dict.fromkeys(key for conflict in synthesis.conflicts for key in conflict.revisit))


def _chapter(number: str) -> str:
    return f"chapitre{NBSP}{number}"


def _page(page: int) -> str:
    return f"p.{NBSP}{page}"


def _skipped_text(section: SectionResult) -> str:
    if section.id == NEXT_STEPS_SECTION:
        return f"Étape passée{NBSP}: sans réponse aux étapes du parcours, aucune prochaine étape n’est proposée."
    if section.explicitly_skipped:
        return (
            f"Étape passée{NBSP}: {section.title}. Vous n’avez pas répondu à ses questions, "
            f"nous n’en tirons donc aucune conclusion."
        )
    return (
        f"Étape non renseignée{NBSP}: {section.title}. Ses questions n’ont pas encore reçu de réponse, "
        f"nous n’en tirons donc aucune conclusion."
    )


def _citation(line: Line, section: SectionResult | None) -> str:
    """« p. 17 » within the section's chapter, « chapitre 07, p. 17 » otherwise."""
    same = section is not None and line.chapter == section.chapter and section.id != NEXT_STEPS_SECTION
    parts = [] if same else [_chapter(line.chapter)]
    if line.page:
        parts.append(_page(line.page))
    return ", ".join(parts)


def cited_line(line: Line, section: SectionResult | None) -> str:
    """A list item ending with its source (page, and chapter when it differs from the section's)."""
    citation = _citation(line, section)
    if not citation:
        return f"- {line.text}"
    text, end = (line.text[:-1], ".") if line.text.endswith(".") else (line.text, "")
    return f"- {text} ({citation}){end}"


def _vigilance_block(points: Sequence[str]) -> list[str]:
    if not points:
        return []
    return ["**Points de vigilance**", *(f"- {point}" for point in points)]


def _recommendation_heading(section: SectionResult) -> str:
    return f"Piste qui ressort de vos réponses{NBSP}: **{section.recommendation_label}**"


def _section_block(section: SectionResult, number: int | None = None) -> str:
    if number is None:  # the next steps: each line cites its own chapter
        heading = f"**{section.title}**"
    else:
        heading = f"**{number}. {section.title}** — {_chapter(section.chapter)}"
    if section.skipped:
        return f"{heading}\n{_skipped_text(section)}"
    lines = [heading]
    if section.recommendation_label:
        lines.append(_recommendation_heading(section))
    if section.lines:
        lines.extend(cited_line(line, section) for line in section.lines)
    else:
        lines.append("Vos réponses à cette étape n’appellent pas de remarque particulière.")
    if section.checklist is not None:
        checklist = section.checklist
        lines.append(f"{checklist.present_title}{NBSP}: {', '.join(checklist.present) if checklist.present else 'aucun'}.")
        lines.append(f"{checklist.absent_title}{NBSP}: {', '.join(checklist.absent) if checklist.absent else 'aucun'}.")
    lines.extend(_vigilance_block(section.vigilance))
    if section.partial and section.id != NEXT_STEPS_SECTION:
        lines.append(
            f"Certaines questions de cette étape sont restées sans réponse{NBSP}: "
            f"ce constat ne porte que sur vos réponses."
        )
    return "\n".join(lines)


def _split_long(block: str, limit: int) -> list[str]:
    """Cuts a block longer than ``limit`` at line breaks, then at spaces if a line is too long."""
    pieces: list[str] = []
    current = ""
    for line in block.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:].lstrip()
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def pack_messages(blocks: Sequence[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Groups blocks (separated by a blank line) into messages of at most ``limit`` characters."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        for piece in _split_long(block, limit) if len(block) > limit else [block]:
            candidate = f"{current}\n\n{piece}" if current else piece
            if len(candidate) > limit:
                messages.append(current)
                current = piece
            else:
                current = candidate
    if current:
        messages.append(current)
    return messages


def render_short(synthesis: Synthesis) -> str:
    """The opening message: profile, the three most important next steps, one vigilance point (≤ SHORT_MAX)."""
    lines = [f"**{SHORT_TITLE}**"]
    if synthesis.all_skipped:
        lines.append(
            f"Vous n’avez répondu à aucune question du parcours{NBSP}: la synthèse ne peut rien en conclure. "
            f"Relancez le parcours avec /orientation quand vous le souhaitez."
        )
        return "\n".join(lines)
    if synthesis.conflicts:
        lines.append(conflict_block(synthesis.conflicts))
    if synthesis.profile:
        lines.append(f"**Votre profil**\n{' ; '.join(synthesis.profile).replace(' ;', NBSP + ';')}.")
    else:
        lines.append("**Votre profil**\nÀ préciser (typologie, maturité et formalisation sans réponse).")
    next_steps = synthesis.section(NEXT_STEPS_SECTION)
    if next_steps is not None and next_steps.lines:
        lines.append(f"**{next_steps.title}**")
        lines.extend(cited_line(line, next_steps) for line in next_steps.lines)
    if synthesis.key_vigilance:
        lines.append(f"**Un point de vigilance**\n- {synthesis.key_vigilance}")
    passed = [s.title for s in synthesis.sections if s.explicitly_skipped and s.id != NEXT_STEPS_SECTION]
    if passed:
        names = ", ".join(passed) if len(", ".join(passed)) <= 150 else f"{len(passed)} étapes"
        lines.append(f"Étapes passées, dont rien n’est conclu{NBSP}: {names}.")
    lines.append(
        f"C’est l’essentiel{NBSP}; le détail reprend chaque étape, avec ses sources dans le document "
        f"(bouton «{NBSP}{DETAIL_BUTTON}{NBSP}» ou /synthese)."
    )
    text = "\n".join(lines)
    if len(text) > SHORT_MAX and synthesis.key_vigilance:  # never cut a sentence: drop the vigilance point
        return render_short(replace(synthesis, key_vigilance=None))
    return text


def render_full(synthesis: Synthesis) -> list[str]:
    """« Votre synthèse » as chat messages (each ≤ MAX_MESSAGE characters)."""
    blocks = [f"**{TITLE}**\n{synthesis.intro}"]
    if synthesis.conflicts:
        blocks.append(conflict_block(synthesis.conflicts))
    if synthesis.all_skipped:
        blocks.append(
            f"Vous n’avez répondu à aucune question du parcours{NBSP}: la synthèse ne peut rien en conclure. "
            f"Relancez le parcours avec /orientation quand vous le souhaitez."
        )
    numbered = [section for section in synthesis.sections if section.id != NEXT_STEPS_SECTION]
    for number, section in enumerate(numbered, start=1):
        blocks.append(_section_block(section, number))
    next_steps = synthesis.section(NEXT_STEPS_SECTION)
    if next_steps is not None:
        blocks.append(_section_block(next_steps))
    return pack_messages(blocks)


#: Former name of :func:`render_full`, kept for existing callers.
render_synthesis = render_full


def render_legal_guide(synthesis: Synthesis, comparison: Comparison | None) -> list[str]:
    """The legal-form guide: the recommendation with its reasons and vigilance, then the comparison."""
    blocks: list[str] = []
    section = synthesis.section(FORMALISATION_SECTION)
    head = f"**{LEGAL_TITLE}**"
    if synthesis.conflicts:
        head = f"{head}\n{conflict_block(synthesis.conflicts)}"
    if section is None or section.skipped:
        lines = [head]
        if section is not None:
            lines.append(_skipped_text(section))
        lines.append(
            f"Sans vos réponses, aucune piste ne peut être dégagée{NBSP}: "
            f"voici la comparaison des formes décrites dans le document."
        )
        blocks.append("\n".join(lines))
    elif section.recommendation_label is None:
        blocks.append(
            f"{head}\nVos réponses ne suffisent pas à dégager une piste{NBSP}: "
            f"voici la comparaison des formes décrites dans le document."
        )
    else:
        lines = [head, _recommendation_heading(section), "**Pourquoi**"]
        lines.extend(cited_line(line, section) for line in section.lines)
        lines.extend(_vigilance_block(section.vigilance))
        if section.partial:
            lines.append(
                f"Certaines questions sont restées sans réponse{NBSP}: cette piste ne porte que sur vos réponses."
            )
        lines.append(f"Source{NBSP}: {_chapter(section.chapter)} du document.")
        blocks.append("\n".join(lines))
    if comparison is not None:
        blocks.extend(_comparison_blocks(comparison, synthesis.recommendation))
    return pack_messages(blocks)


def _comparison_blocks(comparison: Comparison, recommended: str | None) -> list[str]:
    """One block per criterion listing every column: readable on a narrow phone screen."""
    labels = dict(comparison.columns)
    legend = ""
    if recommended in labels:
        legend = f"\n👉 signale la piste qui ressort de vos réponses ({labels[recommended]})."
    blocks = [f"**{comparison.title}** — {_chapter(comparison.chapter)}{legend}"]
    for criterion, cells in comparison.rows:
        lines = [f"**{criterion}**"]
        for column, label in comparison.columns:
            marker = "👉 " if column == recommended else ""
            lines.append(f"- {marker}**{label}**{NBSP}: {cells.get(column, '')}")
        blocks.append("\n".join(lines))
    return blocks

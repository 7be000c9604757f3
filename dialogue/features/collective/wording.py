"""How a collective's answers are worded, in the chat and in the group PDF (one place for both)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from dialogue.features.collective.aggregation import (
    AGREEMENT_THRESHOLD,
    MIN_ANSWERS,
    GroupProfile,
    QuestionSpread,
    debate_points,
    group_synthesis,
)
from dialogue.features.collective.publication import BATCH
from dialogue.features.collective.store import Collective
from dialogue.flows.synthesis_text import cited_line, pack_messages
from dialogue.types import literal
from knowledge.debate import DebateRules
from knowledge.flows import NEXT_STEPS_SECTION
from knowledge.loader import KnowledgeBase

#: Marks a question, or an option, on which the collective is divided.
CONTESTED = "⚖️"


#: What the group view shows of the answers, said as it is (the counts can still be read by a small group).
COUNTS_ONLY = (
    "La vue de groupe ne montre que des totaux, jamais la réponse d’un membre : une répartition n’apparaît "
    f"qu’avec au moins {MIN_ANSWERS} réponses d’autres membres que la personne qui la regarde, et elle ne change "
    f"que par paquets d’au moins {BATCH} réponses nouvelles. Dans un petit groupe, un total unanime dit "
    "tout de même ce que chacun a répondu."
)

def percent(value: float | None) -> str:
    if value is None:  # below the anonymity threshold: never shown as a figure
        return "—"
    return f"{round(value * 100)}\u00a0%"


def short_question(text: str) -> str:
    """A question without its « (plusieurs choix possibles) »-style hint."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", " ".join(text.split()))


def spread_line(spread: QuestionSpread) -> str:
    """« Oui : 3 · Non : 2 » (single) or « Coordination 4/5 · Animation 2/5 ⚖️ » (multiple)."""
    if spread.question.kind == "multiple":
        parts = []
        for option in spread.options:
            mark = f" {CONTESTED}" if option.agreement < AGREEMENT_THRESHOLD else ""
            parts.append(f"{option.label} {option.count}/{spread.answered}{mark}")
        return " · ".join(parts)
    return " · ".join(f"{o.label} : {o.count}" for o in spread.options if o.count) or "—"


def question_block(spread: QuestionSpread) -> str:
    skipped = f", {spread.skipped} passée(s)" if spread.skipped else ""
    return (
        f"- **{short_question(spread.question.text)}** — accord {percent(spread.agreement)} "
        f"({spread.answered} réponses{skipped})\n  {spread_line(spread)}"
    )


def render_group_view(
    kb: KnowledgeBase,
    collective: Collective,
    profile: GroupProfile,
    signed: Sequence[str],
    debate: DebateRules,
) -> list[str]:
    """The group view as chat messages (light markup of dialogue.types). No individual answer in it."""
    p = profile.participation
    head = [f"**Regards croisés — « {literal(collective.name)} »**", f"Coordination : {literal(collective.coordinator_name)}."]
    if collective.closed:
        head.append("Collectif clos : la vue est figée.")
    head.append(
        f"Ont ouvert l’invitation : {p.invited} · membres (coordination comprise) : {p.joined} · "
        f"parcours commencé : {p.answering} · terminé : {p.finished}."
    )
    if signed:
        head.append("Ont signé : " + ", ".join(literal(name) for name in signed) + ".")
    head.append(
        "**Mesure de l’accord** : la part de la réponse majoritaire parmi les membres qui ont répondu. "
        "Pour une question à choix multiples, chaque option compte comme un oui ou non, puis on fait la moyenne. "
        f"On parle d’accord à partir de deux tiers ({percent(AGREEMENT_THRESHOLD)}). "
        f"Aucune répartition n’est affichée pour une question qui a moins de {MIN_ANSWERS} réponses "
        "d’autres membres que vous ; les totaux changent par paquets de réponses nouvelles."
    )
    blocks = ["\n".join(head)]
    divergences = profile.divergences
    agreements = profile.agreements
    if not divergences and not agreements:
        blocks.append(
            f"Pas encore assez de réponses : il faut au moins {MIN_ANSWERS} membres autres que vous ayant répondu à "
            "une question pour en montrer la répartition. Invitez les membres et revenez avec /collectif."
        )
        return pack_messages(blocks)
    if divergences:
        heading = f"**Où vos avis divergent** (le plus partagé d’abord, {CONTESTED} = option qui divise)"
        blocks.append(heading + "\n" + "\n".join(question_block(s) for s in divergences))
    if agreements:
        blocks.append("**Où vous êtes d’accord**\n" + "\n".join(question_block(s) for s in agreements))
    if profile.too_few:
        steps = list(dict.fromkeys(s.question.step_title for s in profile.too_few))
        blocks.append(
            f"**Pas assez de réponses** : {len(profile.too_few)} question(s) ont moins de {MIN_ANSWERS} réponses "
            "d’autres membres que vous ; "
            f"leur répartition reste masquée (étapes : {', '.join(steps)})."
        )
    chosen = debate_points(profile, debate.points)
    if chosen:
        lines = ["**Points à mettre en débat**"]
        for point, spread in chosen:
            lines.append(
                f"\n**{point.theme}** — {kb.document.cite(point.chapter, point.page)}\n"
                f"À propos de : « {short_question(spread.question.text)} » (accord {percent(spread.agreement)}).\n"
                f"Ce que dit le document : {point.says}\n"
                f"Pourquoi c’est important : {point.why}\n"
                "À discuter ensemble :\n" + "\n".join(f"- {q}" for q in point.ask)
            )
        blocks.append("\n".join(lines))
    blocks.extend(group_synthesis_blocks(kb, profile))
    return pack_messages(blocks)


def group_synthesis_blocks(kb: KnowledgeBase, profile: GroupProfile) -> list[str]:
    result = group_synthesis(kb.synthesis, profile)
    blocks = [
        "**Synthèse du groupe** — les règles de la synthèse personnelle, appliquées aux réponses majoritaires "
        f"du collectif. {CONTESTED} signale un constat qui repose sur une question, ou une option, qui vous divise."
    ]
    for section in result.synthesis.sections:
        if section.skipped or (not section.lines and not section.recommendation_label):
            continue
        heading = f"**{section.title}**" if section.id == NEXT_STEPS_SECTION else f"**{section.title}** — chap. {section.chapter}"
        lines = [heading]
        contested = result.contested_sections.get(section.id, ())
        if section.recommendation_label:
            lines.append(f"Piste qui ressort des réponses majoritaires : **{section.recommendation_label}**")
            if contested:
                lines.append(f"{CONTESTED} Piste fragile : vos avis divergent sur " + joined(contested) + ". À trancher ensemble avant d’agir.")
        for line in section.lines:
            lines.append(cited_line(line, section))
            for spread in result.contested_rules.get(line.rule_id, ()):
                lines.append(f"  {CONTESTED} avis partagés sur {contest(spread)}")
        blocks.append("\n".join(lines))
    if len(blocks) == 1:
        blocks.append("Les réponses majoritaires ne suffisent pas encore pour en tirer des constats.")
    return blocks


def contest(spread: QuestionSpread) -> str:
    """« Question » (accord 40 %), or for an agreeing multiple choice the options that divide."""
    if spread.diverges:
        return f"« {short_question(spread.question.text)} » (accord {percent(spread.agreement)})"
    options = ", ".join(f"{o.label} ({o.count}/{spread.answered})" for o in spread.contested_options)
    return f"« {short_question(spread.question.text)} » : {options}"


def joined(spreads: Sequence[QuestionSpread]) -> str:
    return ", ".join(contest(s) for s in spreads)

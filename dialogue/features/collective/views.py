"""A collective's group view, read now from the database: the profile, the chat text, the PDF request."""

from __future__ import annotations

from datetime import date

from dialogue import payloads as p
from dialogue.buttons import MENU_BUTTON
from dialogue.compiled import ORIENTATION
from dialogue.features.collective.aggregation import GroupProfile, QuestionSpec, debate_points, group_synthesis
from dialogue.features.collective.publication import Publication
from dialogue.features.collective.requests import GroupReportRequest
from dialogue.features.collective.store import Collective, CollectiveStore, Membership
from dialogue.features.collective.wording import render_group_view
from dialogue.types import Button, literal
from knowledge.debate import DebateRules
from knowledge.loader import KnowledgeBase


class GroupViews:
    """Counts only: nothing built here shows one member's answers."""

    def __init__(self, kb: KnowledgeBase, store: CollectiveStore, debate: DebateRules) -> None:
        self.kb = kb
        self.store = store
        self.debate = debate
        flow = kb.flows[ORIENTATION]
        self.questions: tuple[QuestionSpec, ...] = tuple(
            QuestionSpec(q.id, q.text, q.kind, tuple((o.id, o.label) for o in q.options), step.title)
            for step, q in flow.questions()
        )
        self.question_ids = [q.id for q in self.questions]
        self.publication = Publication(store, self.questions)

    def profile(self, collective: Collective, viewer: str | None = None) -> GroupProfile:
        """The counts ``viewer`` may see: published in batches, shown only with enough answers besides theirs."""
        headcount = self.store.headcount(collective.id)
        return self.publication.profile(collective, viewer, invited=headcount.invited, joined=headcount.joined)

    def texts(self, collective: Collective, viewer: str | None = None) -> list[str]:
        """The group view as chat messages."""
        headcount = self.store.headcount(collective.id)
        return render_group_view(self.kb, collective, self.profile(collective, viewer), headcount.signed, self.debate)

    def request(self, collective: Collective, viewer: str | None = None) -> GroupReportRequest:
        """What the channel needs to build the group PDF and picture."""
        profile = self.profile(collective, viewer)
        return GroupReportRequest(
            collective_name=collective.name,
            coordinator_name=collective.coordinator_name,
            closed=collective.closed,
            profile=profile,
            synthesis=group_synthesis(self.kb.synthesis, profile),
            debate=tuple(debate_points(profile, self.debate.points)),
            signed=tuple(self.store.headcount(collective.id).signed),
            day=date.today(),
        )


#: A member corrects their own answers with /modifier: the group view counts them as they are now.
EDIT_MINE = "Modifier mes réponses"


def counting_sentence(collective: Collective, counted: Collective | None) -> str:
    if counted is not None and counted.id == collective.id:
        return "Votre orientation compte pour ce collectif."
    if counted is not None:
        return f"Votre orientation compte actuellement pour « {literal(counted.name)} »."
    return "Votre orientation ne compte pour aucun collectif pour l’instant."


def member_buttons(membership: Membership, counted: Collective | None) -> tuple[tuple[Button, ...], ...]:
    collective = membership.collective
    rows: list[tuple[Button, ...]] = []
    if not collective.closed:
        if counted is None or counted.id != collective.id:
            rows.append((Button("Faire compter mon orientation ici", f"k:count:{collective.id}"),))
        rows.append((Button("Mon orientation", p.flow(ORIENTATION)), Button(EDIT_MINE, p.edit(ORIENTATION))))
    rows.append((Button("Quitter le collectif", f"k:leave:{collective.id}"),))
    rows.append((Button("Créer un autre collectif", "k:new"), MENU_BUTTON))
    return tuple(rows)


def coordinator_buttons(collective: Collective) -> tuple[tuple[Button, ...], ...]:
    cid = collective.id
    rows: list[tuple[Button, ...]] = []
    if not collective.closed:
        rows.append((Button("Inviter", f"k:inv:{cid}"), Button("Nouveau code", f"k:renew:{cid}")))
        rows.append((Button("Désactiver le code", f"k:revoke:{cid}"),))
        see = Button("Réserver la vue à moi", f"k:hide:{cid}") if collective.members_see_view else Button("Montrer la vue aux membres", f"k:see:{cid}")
        rows.append((see,))
        rows.append((Button("Clore le collectif", f"k:close:{cid}"), Button("Supprimer", f"k:del:{cid}")))
        rows.append((Button(EDIT_MINE, p.edit(ORIENTATION)),))
    else:
        rows.append((Button("Supprimer le collectif", f"k:del:{cid}"),))
    rows.append((Button("Créer un autre collectif", "k:new"), MENU_BUTTON))
    return tuple(rows)

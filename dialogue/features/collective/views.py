"""A collective's group view, read now from the database: the profile, the chat text, the PDF request."""

from __future__ import annotations

from datetime import date

from dialogue.compiled import ORIENTATION
from dialogue.features.collective.aggregation import GroupProfile, QuestionSpec, aggregate, debate_points, group_synthesis
from dialogue.features.collective.requests import GroupReportRequest
from dialogue.features.collective.store import Collective, CollectiveStore
from dialogue.features.collective.wording import render_group_view
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

    def profile(self, collective: Collective) -> GroupProfile:
        answers = self.store.member_answers(collective, self.question_ids)
        headcount = self.store.headcount(collective.id)
        return aggregate(self.questions, answers, invited=headcount.invited, joined=headcount.joined)

    def texts(self, collective: Collective) -> list[str]:
        """The group view as chat messages."""
        headcount = self.store.headcount(collective.id)
        return render_group_view(self.kb, collective, self.profile(collective), headcount.signed, self.debate)

    def request(self, collective: Collective) -> GroupReportRequest:
        """What the channel needs to build the group PDF and picture."""
        profile = self.profile(collective)
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

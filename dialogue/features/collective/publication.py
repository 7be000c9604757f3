"""What a group view may show: counts published in batches, so that no one answer can be singled out.

The attack this defeats
-----------------------
Counts alone do not make answers anonymous. A coordinator who looks at the view, waits
for one member to answer, and looks again reads that member's answer from the
difference; one who joins with a second account knows two answers of the counts and
deduces a third. So:

- a question's distribution is shown only when at least
  :data:`~dialogue.features.collective.aggregation.MIN_ANSWERS` answers **other than the
  viewer's own** are in it (:func:`~dialogue.features.collective.aggregation.spread_of`);
- the counts shown are a **published** snapshot (table ``collective_published``, counts
  only, no user id), refreshed only once at least :data:`BATCH` members other than the
  coordinator answered or changed their answer since the last publication. Looking
  before and after one member answers shows the same figures; when they change, at
  least three new answers changed together.

The snapshot holds totals per option, never who gave them; /oublier removes a person's
answers from every future publication (they stop counting at once) and deleting a
collective deletes its snapshots.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from dialogue.clock import now_iso
from dialogue.features.collective.aggregation import (
    MIN_ANSWERS,
    GroupProfile,
    Participation,
    QuestionSpec,
    Tally,
    spread_of,
    tally,
)
from dialogue.features.collective.moves import last_move, movers_after
from dialogue.features.collective.store import JOINED, Collective, CollectiveStore
from dialogue.storage.progress import AnswerValue

#: Members other than the coordinator who answered, changed an answer, joined or left since the last
#: publication, needed for a new one.
BATCH = 3


@dataclass(frozen=True, slots=True)
class Published:
    counts: Tally
    history_mark: int  # the last ``answer_history`` entry the counts include
    moves_mark: int  # the last arrival or departure they include


@dataclass(frozen=True, slots=True)
class AnswerRow:
    user_id: str
    question: str
    value: AnswerValue  # None: skipped
    version: int | None  # the answer's last entry in ``answer_history`` (None: frozen at closing)


def answer_rows(db: Database, collective: Collective, questions: Sequence[str]) -> list[AnswerRow]:
    """The counted members' answers to ``questions``, with their place in the history (``None`` once frozen).

    The user ids stay inside the feature: the publication uses them only to leave the
    viewer's own answer and the coordinator's changes out of its thresholds.
    """
    marks = ",".join("?" * len(questions))
    if collective.closed:
        sql = (
            "SELECT user_id, question, value, skipped, NULL FROM collective_answers "
            f"WHERE collective_id = ? AND question IN ({marks})"
        )
        params: list = [collective.id, *questions]
    else:
        sql = (
            "SELECT a.user_id, a.question, a.value, a.skipped, (SELECT MAX(h.id) FROM answer_history h "
            "WHERE h.user_id = a.user_id AND h.question = a.question) FROM answers a "
            "JOIN collective_members m ON m.user_id = a.user_id "
            f"WHERE m.collective_id = ? AND m.status = ? AND m.counts = 1 AND a.question IN ({marks})"
        )
        params = [collective.id, JOINED, *questions]
    loads = json.loads
    return [
        AnswerRow(user_id, question, None if skipped else loads(value), version)
        for user_id, question, value, skipped, version in db.execute(sql, params).fetchall()
    ]


class Publication:
    """Reads the published counts of a collective, publishing a new batch when one is due."""

    def __init__(self, store: CollectiveStore, questions: Sequence[QuestionSpec]) -> None:
        self.store = store
        self.db = store.db
        self.questions = tuple(questions)
        self.question_ids = [q.id for q in self.questions]

    def _published(self, collective_id: str) -> dict[str, Published]:
        rows = self.db.execute(
            "SELECT question, counts, answered, skipped, history_mark, moves_mark FROM collective_published "
            "WHERE collective_id = ?", [collective_id],
        ).fetchall()
        return {q: Published(Tally(json.loads(counts), answered, skipped), history or 0, moves or 0)
                for q, counts, answered, skipped, history, moves in rows}

    def _publish(self, collective_id: str, question: str, published: Published) -> None:
        counted = published.counts
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO collective_published (collective_id, question, counts, answered, skipped, published_at, "
                "history_mark, moves_mark) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (collective_id, question) DO UPDATE "
                "SET counts = excluded.counts, answered = excluded.answered, skipped = excluded.skipped, "
                "published_at = excluded.published_at, history_mark = excluded.history_mark, moves_mark = excluded.moves_mark",
                [collective_id, question, json.dumps(dict(counted.counts)), counted.answered, counted.skipped, now_iso(),
                 published.history_mark, published.moves_mark],
            )

    def profile(self, collective: Collective, viewer: str | None, *, invited: int, joined: int) -> GroupProfile:
        """The group profile ``viewer`` may see (``None``: no member's own answer is excluded, e.g. a tool)."""
        rows = answer_rows(self.db, collective, self.question_ids)
        by_question: dict[str, list[AnswerRow]] = {}
        answering: dict[str, set[str]] = {}
        for row in rows:
            by_question.setdefault(row.question, []).append(row)
            answering.setdefault(row.user_id, set()).add(row.question)
        published = self._published(collective.id)
        history_now = max((row.version or 0 for row in rows), default=0)
        moves_now = last_move(self.db)
        spreads = []
        for question in self.questions:
            current = by_question.get(question.id, [])
            fresh = tally(question, [row.value for row in current])
            shown = published.get(question.id)
            if fresh.answered >= MIN_ANSWERS and (shown is None or self._due(current, shown, collective)):
                shown = Published(fresh, history_now, moves_now)
                self._publish(collective.id, question.id, shown)
            viewer_answered = viewer is not None and any(row.user_id == viewer for row in current)
            if shown is None or fresh.answered - int(viewer_answered) < MIN_ANSWERS:
                # Too few answers today (never published, or people left or erased themselves since):
                # only the number of answers is shown, whatever was published before.
                spreads.append(spread_of(question, fresh, viewer_counted=viewer_answered))
                continue
            mark = shown.history_mark
            viewer_counted = viewer is not None and any(
                row.user_id == viewer and (row.version or 0) <= mark for row in current
            )
            spreads.append(spread_of(question, shown.counts, viewer_counted=viewer_counted))
        ids = set(self.question_ids)
        finished = sum(1 for questions in answering.values() if ids <= questions)
        return GroupProfile(Participation(invited, joined, len(answering), finished), tuple(spreads))

    def _due(self, current: Sequence[AnswerRow], shown: Published, collective: Collective) -> bool:
        """A new batch: :data:`BATCH` members besides the coordinator answered, changed, joined or left since."""
        changed = {row.user_id for row in current if row.version is not None and row.version > shown.history_mark}
        changed |= movers_after(self.db, collective.id, shown.moves_mark)
        changed.discard(collective.coordinator_id)
        return len(changed) >= BATCH

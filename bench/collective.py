"""Regards croisés: time to show the group view of a large collective (``make bench``, section « collective »).

200 members have answered the whole orientation at random (SQLite file on disk, WAL,
as in production); the coordinator types /collectif, which reads every counted
member's answers, aggregates them, applies the synthesis rules to the majority answers
and renders the chat messages. Target: ≤ 50 ms (p95 over repeated views).
"""

from __future__ import annotations

import random
import time

from bench.report import Section, percentile
from dialogue.engine import Engine
from dialogue.features.collective.feature import CollectiveFeature
from dialogue.features.collective.store import CollectiveStore
from dialogue.storage.progress import ProgressStore, UserRecord
from dialogue.types import Command
from knowledge.loader import KnowledgeBase

NAME = "collective"
MAX_VIEW_MS = 50.0


def _random_answer(question, rng: random.Random):
    options = [o.id for o in question.options]
    if rng.random() < 0.05:
        return None  # skipped
    if question.kind == "multiple":
        return [o for o in options if rng.random() < 0.4] or [options[0]]
    return rng.choice(options)


def group_view(members: int = 200, views: int = 40, *, kb: KnowledgeBase, workdir, seed: int = 13) -> Section:
    section = Section(NAME)
    rng = random.Random(seed)
    questions = [q for _, q in kb.flows["orientation"].questions()]
    with workdir() as tmp:
        engine = Engine(kb, ProgressStore.open(tmp / "collective.db"))
        try:
            collectives = CollectiveStore(engine.store.db)
            collective, _ = collectives.create("bench:coordinator", "PTCE du banc d’essai", "Coordination")
            for index in range(members):
                user = f"bench:member:{index}"
                answers = {q.id: _random_answer(q, rng) for q in questions}
                engine.store.save(UserRecord(id=user, state="menu", answers=dict(answers)), answers)
                collectives.record_invited(collective.id, user)
                collectives.join(collective.id, user, None)
            engine.handle("bench:coordinator", Command("collectif"))  # warm caches
            samples = []
            for _ in range(views):
                started = time.perf_counter_ns()
                replies = engine.handle("bench:coordinator", Command("collectif"))
                samples.append(time.perf_counter_ns() - started)
            text = "\n".join(reply.text for reply in replies)
            pure_samples = []
            for _ in range(views):
                started = time.perf_counter_ns()
                engine.feature(CollectiveFeature).flow.profile(collective)
                pure_samples.append(time.perf_counter_ns() - started)
        finally:
            engine.close()
    ms = [s / 1e6 for s in samples]
    section.details = {
        "members": members,
        "views": views,
        "messages": len(replies),
        "characters": len(text),
        "view_ms": {"p50": percentile(ms, 0.5), "p95": percentile(ms, 0.95), "max": max(ms)},
    }
    section.add(f"group view, {members} members, p50", percentile(ms, 0.5), "ms")
    section.add(f"group view, {members} members, p95", percentile(ms, 0.95), "ms", MAX_VIEW_MS, "<=")
    section.add("of which reading + aggregating (profile) p50", percentile([s / 1e6 for s in pure_samples], 0.5), "ms")
    return section

"""Bench section « team »: cost of the question log in the engine, ``insights`` over 1,000,000 logged questions.

Targets (issue 12): logging adds ≤ 0.2 ms to the engine's p99; ``insights``
over 1,000,000 questions in ≤ 10 s and ≤ 300 MB peak RSS (measured in a
child process, so the bench's own memory does not count).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

from bench.report import Section, summarise_ms
from bench.workload import Workload, interleave
from dialogue.assembly import open_store
from dialogue.engine import Engine
from dialogue.features.registry import standard_features
from dialogue.features.team.flow import TeamServices
from dialogue.features.team.handovers import HandoverStore
from dialogue.features.team.question_log import QuestionLog
from dialogue.storage.progress import ProgressStore
from knowledge.loader import KnowledgeBase

MAX_LOG_OVERHEAD_MS = 0.2
MAX_INSIGHTS_S = 10.0
MAX_INSIGHTS_MB = 300.0
TIERS = ("confident",) * 6 + ("suggest", "hedged", "declined", "declined", "not_covered")

_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from sqlite_utils import Database
from bot import insights
from knowledge.loader import load_knowledge
kb = load_knowledge()
db = Database(sys.argv[1])
started = time.perf_counter()
data = insights.compute(db, kb)
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "total_seconds": time.perf_counter() - t0, "questions": data.questions,
                  "groups": len(data.inbox), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


class _TimedLog(QuestionLog):
    """The question log, timing each write (the whole cost logging adds to an event)."""

    samples: list[int]

    def log(self, user_id, entry):
        started = time.perf_counter_ns()
        try:
            return super().log(user_id, entry)
        finally:
            self.samples.append(time.perf_counter_ns() - started)


def _engines_ab(kb: KnowledgeBase, tmp, order) -> tuple[dict, dict, dict]:
    """The same events through two engines, log off and on, interleaved so machine load hits both alike."""
    engines = {}
    for name, enabled in (("off", False), ("on", True)):
        store = ProgressStore.open(tmp / f"{name}.db")
        log = _TimedLog(store.db, enabled=enabled)
        log.samples = []
        engines[name] = (Engine(kb, store, features=standard_features(team=TeamServices(log, HandoverStore(store.db)))), log)
    samples: dict[str, list[int]] = {"off": [], "on": []}
    clock = time.perf_counter_ns
    try:
        for user, event in order[:200]:
            for engine, _ in engines.values():
                engine.handle(f"warm:{user}", event)
        for index, (user, event) in enumerate(order):
            names = ("off", "on") if index % 2 else ("on", "off")
            for name in names:
                engine = engines[name][0]
                started = clock()
                engine.handle(f"u:{user}", event)
                samples[name].append(clock() - started)
        writes = engines["on"][1].samples[200:] or engines["on"][1].samples
    finally:
        for engine, _ in engines.values():
            engine.close()
    return summarise_ms(samples["off"]), summarise_ms(samples["on"]), summarise_ms(writes)


def populate_log(path, kb: KnowledgeBase, rows: int, *, seed: int = 3) -> None:
    """``rows`` logged questions over six months: a few thousand distinct texts, Zipf-like frequencies."""
    rng = random.Random(seed)
    store = open_store(path)
    topics = list(kb.topics)
    examples = [q for t in kb.topics.values() for q in t.questions]
    words = "demain comment pourquoi quand notre projet territoire aide region commune budget salarie benevole local".split()
    texts = [f"{rng.choice(examples).lower()} {rng.choice(words)}" for _ in range(5000)]
    users = [f"{rng.getrandbits(128):032x}" for _ in range(20000)]

    def generate():
        for index in range(rows):
            text = texts[min(int(rng.paretovariate(1.1)) - 1, len(texts) - 1)] if rng.random() < 0.7 else rng.choice(texts)
            tier = rng.choice(TIERS)
            topic = None if tier == "declined" else rng.choice(topics)
            day = index * 180 // rows
            feedback = rng.choice((None, None, None, 1, 1, -1))
            yield (
                f"2026-{1 + day // 30:02d}-{1 + day % 28:02d}T{rng.randint(8, 20):02d}:00:00+00:00",
                rng.choice(users), text, topic, rng.choice(topics), round(rng.random(), 4), tier, None, None, feedback,
            )

    with store.db.atomic():
        store.db.conn.executemany(
            "INSERT INTO question_log (at, user_hash, text, topic, runner_up, score, tier, flow, step, feedback) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            generate(),
        )
    store.close()


def team(kb: KnowledgeBase, *, users: int = 300, events: int = 30, log_rows: int = 1_000_000, workdir) -> Section:
    section = Section("team")
    order = interleave(Workload.from_kb(kb).scripts(users, events, seed=7))
    with workdir() as tmp:
        off, on, writes = _engines_ab(kb, tmp, order)
        populate_started = time.perf_counter()
        populate_log(tmp / "log.db", kb, log_rows)
        populate_s = time.perf_counter() - populate_started
        child = subprocess.run([sys.executable, "-c", _CHILD, str(tmp / "log.db")], capture_output=True, text=True, check=True)
        result = json.loads(child.stdout)
    overhead = on["p99_ms"] - off["p99_ms"]
    section.details = {"logging_off": off, "logging_on": on, "log_write": writes, "insights": result, "populate_s": populate_s, "events": len(order)}
    section.add("engine p99, question log off", off["p99_ms"], "ms")
    section.add("engine p99, question log on", on["p99_ms"], "ms")
    section.add("p99 added by the question log (A/B, interleaved)", round(overhead, 3), "ms", MAX_LOG_OVERHEAD_MS, "<=")
    section.add("question-log write p99 (per logged question)", writes["p99_ms"], "ms", note="its own commit; part of the A/B figure")
    section.add(f"insights over {result['questions']:,} questions".replace(",", " "), round(result["seconds"], 2), "s", MAX_INSIGHTS_S, "<=")
    section.add("insights peak RSS", round(result["rss_mb"], 1), "MB", MAX_INSIGHTS_MB, "<=")
    return section

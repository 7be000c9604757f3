"""Figures for the team that keeps the knowledge, from the question log and the progress tables.

All counting is done by SQLite (GROUP BY over indexed columns); Python only
sees one row per distinct question text, per week, per topic or per question.
Reads run inside one read transaction so the figures are consistent with
each other while the bot keeps writing.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlite_utils import Database

from knowledge.loader import KnowledgeBase

INBOX_TIERS = ("declined", "hedged", "suggest", "not_covered")
TIER_LABELS = {
    "confident": "Réponse sûre",
    "hedged": "Réponse prudente",
    "suggest": "Suggestions",
    "declined": "Pas de réponse",
    "not_covered": "Non traité par le document",
}


@dataclass
class Week:
    week: str
    questions: int
    users: int
    conversations: int


@dataclass
class InboxGroup:
    key: str
    count: int
    example: str
    variants: list[str]
    topic: str | None
    runner_up: str | None
    declined: int
    hedged: int
    thumbs_down: int
    comments: list[str] = field(default_factory=list)


@dataclass
class StepFigure:
    step: str
    title: str
    reached: int
    stopped_here: int


@dataclass
class Funnel:
    flow: str
    title: str
    started: int
    finished: int
    steps: list[StepFigure]
    most_skipped: list[tuple[str, str, int]]


@dataclass
class Insights:
    since: str
    until: str
    questions: int
    users: int
    weeks: list[Week]
    tiers: dict[str, int]
    feedback: dict[str, dict[str, int]]
    inbox: list[InboxGroup]
    funnels: list[Funnel]
    open_handovers: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)


def parse_day(text: str | None, *, end: bool = False) -> str | None:
    """``YYYY-MM-DD`` to an ISO bound; ``--until`` includes the whole day."""
    if not text:
        return None
    day = date.fromisoformat(text)
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=timezone.utc).isoformat(timespec="seconds")


def compute(db: Database, kb: KnowledgeBase, *, since: str | None = None, until: str | None = None, inbox_limit: int = 30) -> Insights:
    """Everything ``ptce-bot insights`` shows, for ``since <= at < until`` (ISO strings)."""
    lo, hi = since or "0000", until or "9999"
    conn = db.conn
    conn.execute("BEGIN")  # one read transaction: a consistent snapshot under WAL
    try:
        period = [lo, hi]
        # Without bounds a plain scan beats walking the index on ``at`` (« +at » disables it).
        where = "at >= ? AND at < ?" if since or until else "+at >= ? AND +at < ?"
        total, users = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT user_hash) FROM question_log WHERE at >= ? AND at < ?", period
        ).fetchone()
        # Per day first (cheap), then weeks: a conversation is one person on one day.
        weekly: dict[str, list[int]] = {}
        for day, questions, people in conn.execute(
            f"SELECT substr(at, 1, 10) AS day, COUNT(*), COUNT(DISTINCT user_hash) FROM question_log WHERE {where} GROUP BY day",
            period,
        ):
            figures = weekly.setdefault(_week_of(day), [0, 0, 0])
            figures[0] += questions
            figures[2] += people
        for week, people in conn.execute(
            f"SELECT strftime('%Y-S%W', substr(at, 1, 10)) AS week, COUNT(DISTINCT user_hash) FROM question_log "
            f"WHERE {where} GROUP BY week",
            period,
        ):
            if week in weekly:
                weekly[week][1] = people
        weeks = [Week(week, *figures) for week, figures in sorted(weekly.items())]
        tiers = dict(conn.execute(f"SELECT tier, COUNT(*) FROM question_log WHERE {where} GROUP BY tier ORDER BY 2 DESC", period))
        feedback: dict[str, dict[str, int]] = {}
        for topic, up, down in conn.execute(
            f"SELECT topic, SUM(feedback = 1), SUM(feedback = -1) FROM question_log WHERE {where} "
            "AND feedback IS NOT NULL AND topic IS NOT NULL GROUP BY topic ORDER BY 3 DESC, 2 DESC",
            period,
        ):
            feedback[topic] = {"up": up, "down": down}
        inbox = _inbox(conn, kb, where, period, inbox_limit)
        funnels = [_funnel(conn, kb, flow, lo, hi) for flow in sorted(kb.flows.values(), key=lambda f: f.id != "orientation")]
        open_handovers = conn.execute("SELECT COUNT(*) FROM handovers WHERE status = 'open'").fetchone()[0]
    finally:
        conn.execute("COMMIT")
    return Insights(
        since=lo if since else "",
        until=hi if until else "",
        questions=total,
        users=users,
        weeks=weeks,
        tiers=tiers,
        feedback=feedback,
        inbox=inbox,
        funnels=funnels,
        open_handovers=open_handovers,
    )


def similarity_key(analyzer, text: str) -> str:
    """The matcher's own normalisation (synonyms, typos, stems), order and repeats ignored."""
    return " ".join(sorted(set(analyzer.terms(text)))) or text


def _week_of(day: str) -> str:
    return date.fromisoformat(day).strftime("%Y-S%W")


_INBOX_FILTER = f"(tier IN ({','.join(repr(t) for t in INBOX_TIERS)}) OR feedback = -1)"


def _inbox(conn, kb: KnowledgeBase, where: str, period: list[str], limit: int) -> list[InboxGroup]:
    """Group per distinct text in SQL, merge similar texts in Python, then detail only the top groups."""
    from knowledge.matcher import Matcher

    analyzer = Matcher.for_knowledge(kb).analyzer
    groups: dict[str, dict] = {}
    for text, count, declined, hedged, down in conn.execute(
        f"SELECT text, COUNT(*), SUM(tier = 'declined'), SUM(tier IN ('hedged', 'suggest')), SUM(COALESCE(feedback, 0) = -1) "
        f"FROM question_log WHERE {where} AND {_INBOX_FILTER} GROUP BY text",
        period,
    ):
        group = groups.setdefault(similarity_key(analyzer, text), {"count": 0, "texts": Counter(), "declined": 0, "hedged": 0, "down": 0})
        group["count"] += count
        group["texts"][text] += count
        group["declined"] += declined
        group["hedged"] += hedged
        group["down"] += down
    ranked = sorted(groups.items(), key=lambda item: (-item[1]["count"], item[1]["texts"].most_common(1)[0][0]))[:limit]
    texts = {text: key for key, group in ranked for text in group["texts"]}
    topics: dict[str, Counter] = defaultdict(Counter)
    runners: dict[str, Counter] = defaultdict(Counter)
    comments: dict[str, list[str]] = defaultdict(list)
    if texts:
        marks = ",".join("?" * len(texts))
        for text, topic, runner_up, count in conn.execute(
            f"SELECT text, topic, runner_up, COUNT(*) FROM question_log WHERE {where} AND {_INBOX_FILTER} "
            f"AND text IN ({marks}) GROUP BY text, topic, runner_up",
            [*period, *texts],
        ):
            topics[texts[text]][topic] += count
            runners[texts[text]][runner_up] += count
        for text, comment in conn.execute(
            f"SELECT text, comment FROM question_log WHERE {where} AND comment IS NOT NULL AND text IN ({marks}) ORDER BY at DESC LIMIT 200",
            [*period, *texts],
        ):
            if len(comments[texts[text]]) < 3:
                comments[texts[text]].append(comment)
    result = []
    for key, group in ranked:
        ordered = [t for t, _ in group["texts"].most_common()]
        result.append(
            InboxGroup(
                key=key,
                count=group["count"],
                example=ordered[0],
                variants=ordered[1:4],
                topic=topics[key].most_common(1)[0][0] if topics[key] else None,
                runner_up=runners[key].most_common(1)[0][0] if runners[key] else None,
                declined=group["declined"],
                hedged=group["hedged"],
                thumbs_down=group["down"],
                comments=comments[key],
            )
        )
    return result


def _funnel(conn, kb: KnowledgeBase, flow, lo: str, hi: str) -> Funnel:
    steps = [(step, [q.id for q in step.questions]) for step in flow.steps]
    question_step = {q: index for index, (_, ids) in enumerate(steps) for q in ids}
    if not question_step:
        return Funnel(flow.id, flow.title, 0, 0, [], [])
    marks = ",".join("?" * len(question_step))
    # One row per user who answered or skipped a question of this flow in the period.
    per_user: dict[str, set[int]] = defaultdict(set)
    answered_per_step: dict[str, set[str]] = defaultdict(set)
    for user, question in conn.execute(
        f"SELECT user_id, question FROM answers WHERE question IN ({marks}) AND answered_at >= ? AND answered_at < ?",
        [*question_step, lo, hi],
    ):
        per_user[user].add(question_step[question])
        answered_per_step[user].add(question)
    required = {index: set(ids) for index, (_, ids) in enumerate(steps)}
    reached: Counter[int] = Counter()
    stopped: Counter[int] = Counter()
    finished = 0
    for user, indices in per_user.items():
        for index in indices:
            reached[index] += 1
        done = answered_per_step[user]
        first_missing = next((i for i in range(len(steps)) if not required[i] <= done), None)
        if first_missing is None:
            finished += 1
        else:
            stopped[first_missing] += 1
    skipped = conn.execute(
        f"SELECT question, COUNT(*) FROM answers WHERE skipped = 1 AND question IN ({marks}) "
        "AND answered_at >= ? AND answered_at < ? GROUP BY question ORDER BY 2 DESC, 1 LIMIT 5",
        [*question_step, lo, hi],
    ).fetchall()
    texts = {q.id: q.text for step, _ in steps for q in step.questions}
    return Funnel(
        flow=flow.id,
        title=flow.title,
        started=len(per_user),
        finished=finished,
        steps=[
            StepFigure(step.id if hasattr(step, "id") else str(index), step.title, reached[index], stopped[index])
            for index, (step, _) in enumerate(steps)
        ],
        most_skipped=[(q, texts.get(q, q), n) for q, n in skipped],
    )


def render_text(data: Insights, kb: KnowledgeBase) -> str:
    """The terminal table."""
    out = [f"Questions : {data.questions} — personnes : {data.users} — transmissions en attente : {data.open_handovers}", ""]
    out.append("Semaine     Questions  Personnes  Conversations")
    out += [f"{w.week:<10} {w.questions:>10} {w.users:>10} {w.conversations:>14}" for w in data.weeks]
    out.append("")
    out.append("Niveau de réponse")
    for tier, count in data.tiers.items():
        share = 100 * count / data.questions if data.questions else 0
        out.append(f"  {TIER_LABELS.get(tier, tier):<28} {count:>8}  {share:5.1f} %")
    out.append("")
    out.append("Avis par sujet (👍 / 👎)")
    for topic, votes in data.feedback.items():
        out.append(f"  {topic:<40} {votes['up']:>5} / {votes['down']:<5}")
    out.append("")
    out.append("Boîte de réception (questions mal comprises, les plus fréquentes d’abord)")
    for group in data.inbox:
        chosen = group.topic or "aucun sujet"
        out.append(f"  {group.count:>5} × « {group.example} » → {chosen} (ensuite : {group.runner_up or '—'})")
    for funnel in data.funnels:
        out.append("")
        out.append(f"Parcours « {funnel.title} » : {funnel.started} commencé(s), {funnel.finished} terminé(s)")
        for step in funnel.steps:
            out.append(f"  {step.title[:40]:<40} atteinte : {step.reached:>6}  arrêt ici : {step.stopped_here:>6}")
        if funnel.most_skipped:
            out.append("  Questions les plus passées :")
            out += [f"    {n:>5} × {text[:70]}" for _, text, n in funnel.most_skipped]
    return "\n".join(out)

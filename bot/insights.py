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
        where = "at >= ? AND at < ?"
        total, users = conn.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT user_hash) FROM question_log WHERE {where}", period
        ).fetchone()
        weeks = [
            Week(*row)
            for row in conn.execute(
                f"SELECT strftime('%Y-S%W', at) AS week, COUNT(*), COUNT(DISTINCT user_hash), "
                f"COUNT(DISTINCT user_hash || substr(at, 1, 10)) FROM question_log WHERE {where} GROUP BY week ORDER BY week",
                period,
            )
        ]
        tiers = dict(conn.execute(f"SELECT tier, COUNT(*) FROM question_log WHERE {where} GROUP BY tier ORDER BY 2 DESC", period))
        feedback: dict[str, dict[str, int]] = {}
        for topic, up, down in conn.execute(
            f"SELECT topic, SUM(feedback = 1), SUM(feedback = -1) FROM question_log WHERE {where} "
            "AND feedback IS NOT NULL AND topic IS NOT NULL GROUP BY topic ORDER BY 3 DESC, 2 DESC",
            period,
        ):
            feedback[topic] = {"up": up, "down": down}
        inbox_rows = conn.execute(
            f"SELECT text, topic, runner_up, tier, feedback, COUNT(*), group_concat(comment, ' | ') FROM question_log "
            f"WHERE {where} AND (tier IN ({','.join('?' * len(INBOX_TIERS))}) OR feedback = -1) "
            "GROUP BY text, topic, runner_up, tier, feedback",
            period + list(INBOX_TIERS),
        ).fetchall()
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
        inbox=group_inbox(kb, inbox_rows)[:inbox_limit],
        funnels=funnels,
        open_handovers=open_handovers,
    )


def similarity_key(analyzer, text: str) -> str:
    """The matcher's own normalisation (synonyms, typos, stems), order and repeats ignored."""
    return " ".join(sorted(set(analyzer.terms(text)))) or text


def group_inbox(kb: KnowledgeBase, rows) -> list[InboxGroup]:
    from knowledge.matcher import Matcher

    analyzer = Matcher(kb).analyzer
    groups: dict[str, dict] = {}
    for text, topic, runner_up, tier, feedback, count, comments in rows:
        key = similarity_key(analyzer, text)
        group = groups.setdefault(
            key, {"count": 0, "texts": Counter(), "topics": Counter(), "runners": Counter(), "tiers": Counter(), "down": 0, "comments": []}
        )
        group["count"] += count
        group["texts"][text] += count
        group["topics"][topic] += count
        group["runners"][runner_up] += count
        group["tiers"][tier] += count
        if feedback == -1:
            group["down"] += count
        if comments:
            group["comments"].extend(c for c in comments.split(" | ") if c)
    result = []
    for key, g in groups.items():
        texts = [t for t, _ in g["texts"].most_common()]
        result.append(
            InboxGroup(
                key=key,
                count=g["count"],
                example=texts[0],
                variants=texts[1:4],
                topic=g["topics"].most_common(1)[0][0],
                runner_up=g["runners"].most_common(1)[0][0],
                declined=g["tiers"]["declined"],
                hedged=g["tiers"]["hedged"] + g["tiers"]["suggest"],
                thumbs_down=g["down"],
                comments=g["comments"][:3],
            )
        )
    result.sort(key=lambda g: (-g.count, g.example))
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
    reached = Counter()
    stopped = Counter()
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

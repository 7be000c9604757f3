"""Whole conversations played through the real engine, as the terminal chat does, and judged.

``python -m bench.conversations FILE.yaml [--out DIR]`` plays every persona of a file (a fresh
user each, the terminal's numbering: a bare number picks the button printed next to it), writes
the transcript (Markdown) and a judgement table (TSV) beside it, and prints the rates.

Each free-text turn carries the verdict its author expected *before* running it (written blind,
from the reference document):

- ``T:a|b`` — a page (or a follow-up of it) of one of these topics;
- ``G`` / ``G:topic`` — « le document ne précise pas », the fact asked is not in the document;
- ``S`` / ``S:intent`` — small talk (thanks, goodbye, agreement, frustration, human…);
- ``D`` — off-topic, to be declined (small talk is fine too);
- ``tool:name`` — a tool asked for by its name (orientation, formes, glossaire, collectif);
- ``C:a,b`` — a comparison of these two topics;
- ``flow`` — an answer to the step on screen;
- ``-`` — not judged (numbers, commands).

The automatic verdict (good / weak / wrong / confident-wrong / gap-missed / wrongly-called-missing)
follows from what the engine decided; the author then reads every « good » reply and may
overrule a verdict with ``judge: weak|wrong|…`` and a ``why`` in the persona file.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

VERDICTS = ("good", "weak", "wrong", "confident-wrong", "gap-missed", "wrongly-called-missing")


@dataclass
class Outcome:
    decision: str  # flow (no reading), small_talk, tool, compare, gap, followup, glossary, topic
    tier: str = ""
    topic: str | None = None  # the page shown (or the gap's topic)
    detail: str = ""
    options: tuple[str, ...] = ()


def _outcome(reading: Any, record: Any, replies_text: str) -> Outcome:
    if reading is None:
        return Outcome("flow", detail="étape/bouton")
    decision = reading.decision
    match = reading.match
    if decision == "small_talk":
        return Outcome(decision, detail=str(reading.intent))
    if decision == "tool":
        return Outcome(decision, detail=str(reading.tool))
    if decision == "gap":
        return Outcome(decision, topic=reading.gap.topic_id, detail=reading.gap.about[:60])
    if decision == "compare":
        return Outcome(decision, topic=",".join(reading.compare))
    topic = record.context.topic if record is not None else None
    if decision in ("followup", "glossary"):
        return Outcome(decision, topic=topic, detail=str(reading.followup or (reading.term and reading.term.term)))
    options = (match.topic, *(c.topic for c in match.alternatives[:2])) if match else ()
    tier = match.tier if match else ""
    shown = match.topic if tier in ("confident", "hedged") else None
    if "Je vous ai déjà montré" in replies_text:
        tier = "stuck"
    return Outcome("topic", tier=tier, topic=shown, options=tuple(t for t in options if t))


def verdict(expect: str, out: Outcome) -> str:
    """The verdict a demanding user would give, from what was expected and what happened."""
    kind, _, arg = expect.partition(":")
    wanted = {a for a in arg.replace(",", "|").split("|") if a}
    answered = out.decision in ("topic", "followup", "glossary", "compare") and out.tier not in ("suggest", "declined")
    if kind == "G":
        if out.decision == "gap":
            return "good" if not wanted or out.topic in wanted else "weak"
        return "gap-missed"
    if kind == "S":
        if out.decision == "small_talk":
            return "good" if not wanted or out.detail in wanted else "weak"
        return "confident-wrong" if answered and out.tier == "confident" else "wrong"
    if kind == "D":
        if out.decision == "small_talk" or (out.decision == "topic" and out.tier == "declined"):
            return "good"
        if out.decision == "topic" and out.tier == "suggest":
            return "weak"
        return "confident-wrong" if out.tier == "confident" or out.decision == "gap" else "wrong"
    if kind == "tool":
        if out.decision == "tool" and (not wanted or out.detail in wanted):
            return "good"
        if out.decision == "flow" and "orientation" in wanted:
            return "good"
        return "wrong"
    if kind == "flow":
        return "good" if out.decision == "flow" else "wrong"
    if kind == "C":
        if out.decision == "compare" and set(out.topic.split(",")) == wanted:
            return "good"
        if out.decision == "compare":
            return "wrong"
        return "weak" if out.topic in wanted else "wrong"
    if kind == "T":
        if out.decision == "gap":
            return "wrongly-called-missing"
        shown = set((out.topic or "").split(","))
        if out.tier == "stuck":
            return "weak"
        if answered and shown & wanted:
            return "good"
        if out.tier == "suggest" and wanted & set(out.options):
            return "weak"
        if out.tier == "declined":
            return "wrong"
        if out.decision == "small_talk" or out.decision == "tool" or out.decision == "flow":
            return "wrong"
        return "confident-wrong" if out.tier == "confident" or out.decision in ("followup", "glossary", "compare") else "wrong"
    raise ValueError(f"attente inconnue : {expect}")


def play_file(path: Path, out_dir: Path) -> list[dict[str, Any]]:
    from bot.terminal import parse_input, render_replies
    from dialogue.assembly import create_engine
    from dialogue.types import Command
    from dialogue.understanding import reading as reading_module

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    last: list[Any] = []
    original = reading_module.Reader.read

    def spy(self, text, context=None):  # type: ignore[no-untyped-def]
        result = original(self, text, context)
        last.append(result)
        return result

    reading_module.Reader.read = spy  # type: ignore[method-assign]
    rows: list[dict[str, Any]] = []
    transcript: list[str] = [f"# {data.get('title', path.stem)}\n"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = create_engine(Path(tmp) / "conv.db")
            try:
                for persona in data["personas"]:
                    user = f"conv:{persona['id']}"
                    transcript.append(f"\n## {persona['id']} — {persona['who']}\n")
                    screen = io.StringIO()
                    buttons = render_replies(engine.handle(user, Command("start")), screen, colour=False)
                    for index, turn in enumerate(persona["turns"], start=1):
                        text, expect = str(turn[0]), str(turn[1])
                        note = turn[2] if len(turn) > 2 else {}
                        event = parse_input(text, buttons)
                        screen = io.StringIO()
                        if event is None:
                            transcript.append(f"**> {text}**\n\n(numéro hors liste)\n")
                            continue
                        last.clear()
                        replies = engine.handle(user, event)
                        new = render_replies(replies, screen, colour=False)
                        buttons = new or buttons
                        shown = screen.getvalue().strip()
                        transcript.append(f"**> {text}**  \n`attendu {expect}`\n\n```\n{shown}\n```\n")
                        if expect == "-":
                            continue
                        record = engine.store.load(user)
                        reading = last[-1] if last else None
                        outcome = _outcome(reading, record, shown)
                        auto = verdict(expect, outcome)
                        final = note.get("judge", auto) if isinstance(note, dict) else auto
                        rows.append(
                            {
                                "persona": persona["id"],
                                "turn": index,
                                "text": text,
                                "expect": expect,
                                "category": category(expect, text),
                                "decision": outcome.decision,
                                "tier": outcome.tier,
                                "topic": outcome.topic or outcome.detail,
                                "auto": auto,
                                "verdict": final,
                                "why": note.get("why", "") if isinstance(note, dict) else "",
                                "reply": shown.replace("\n", " ⏎ ")[:220],
                            }
                        )
                        transcript.append(f"`{outcome.decision} {outcome.tier} {outcome.topic or outcome.detail} → {final}`\n")
            finally:
                engine.close()
    finally:
        reading_module.Reader.read = original  # type: ignore[method-assign]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{path.stem}.transcript.md").write_text("\n".join(transcript), encoding="utf-8")
    columns = ["persona", "turn", "expect", "category", "decision", "tier", "topic", "auto", "verdict", "why", "text", "reply"]
    lines = ["\t".join(columns)] + ["\t".join(str(row[c]).replace("\t", " ") for c in columns) for row in rows]
    (out_dir / f"{path.stem}.judged.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


def category(expect: str, text: str) -> str:
    """The kind of turn, for rates by category: what the user did, not what the engine decided."""
    kind = expect.partition(":")[0]
    if kind in ("S", "D"):
        return "small talk / hors sujet"
    if kind == "G":
        return "faits absents du document"
    if kind == "tool":
        return "outils par leur nom"
    if kind == "C":
        return "comparaisons"
    if len(text.split()) <= 5:
        return "relances courtes (contexte)"
    return "questions qui nomment leur sujet"


def by_category(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Category → (good, turns)."""
    found: dict[str, tuple[int, int]] = {}
    for row in rows:
        good, total = found.get(row["category"], (0, 0))
        found[row["category"]] = (good + (row["verdict"] == "good"), total + 1)
    return found


def rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(row["verdict"] for row in rows)
    gaps = [row for row in rows if row["expect"].startswith("G")]
    covered = [row for row in rows if row["expect"].startswith("T")]
    return {
        "turns": len(rows),
        **{v: counts.get(v, 0) for v in VERDICTS},
        "good_rate": counts.get("good", 0) / len(rows) if rows else 0.0,
        "gaps_said": sum(row["verdict"] == "good" or row["verdict"] == "weak" for row in gaps) / len(gaps) if gaps else 1.0,
        "gap_questions": len(gaps),
        "covered_called_missing": sum(row["verdict"] == "wrongly-called-missing" for row in covered),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    everything: list[dict[str, Any]] = []
    for path in args.files:
        rows = play_file(path, args.out or path.parent / "results")
        everything += rows
        summary = rates(rows)
        print(f"{path.name}: {summary}")
        for row in rows:
            if row["verdict"] != "good":
                where = f"{row['persona']}#{row['turn']} [{row['expect']}]"
                print(f"  {row['verdict']:<22} {where} {row['text']!r} → {row['decision']} {row['tier']} {row['topic']}")
    if len(args.files) > 1:
        print(f"total: {rates(everything)}")
    for name, (good, total) in sorted(by_category(everything).items()):
        print(f"  {name:<36} {good}/{total} bons ({good / total:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

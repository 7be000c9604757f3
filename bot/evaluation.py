"""``ptce-bot eval``: the matcher's figures on a question set, and the dialogue corpus played through."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

from bot.exit_codes import EXIT_OK, EXIT_USAGE
from knowledge.loader import load_knowledge


def read_gold(path: Path) -> list[tuple[str, set[str]]]:
    """Rows of an evaluation TSV: (question, gold topic ids; empty set means « none »)."""
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not reader.fieldnames or {"question", "gold"} - set(reader.fieldnames):
            raise ValueError(f"{path.name} : colonnes « question » et « gold » attendues")
        for number, row in enumerate(reader, start=2):
            question, gold = (row.get("question") or "").strip(), (row.get("gold") or "").strip()
            if not question or not gold:
                raise ValueError(f"{path.name}, ligne {number} : question ou gold vide")
            golds = {g.strip() for g in gold.split(",") if g.strip()}
            rows.append((question, set() if golds == {"none"} else golds))
    return rows


#: Tiers in the order the engine trusts them.
TIERS = ("confident", "hedged", "suggest", "declined")
TIER_LABELS = {"confident": "sûre", "hedged": "nuancée", "suggest": "suggestions", "declined": "déclinée"}


def offered_topics(match) -> tuple[str, ...]:
    """Topics a user sees in the first reply: the answer, plus the alternatives offered below it."""
    if match.tier == "declined" or match.topic is None:
        return ()
    if match.tier == "confident":
        return (match.topic,)
    return (match.topic, *(c.topic for c in match.alternatives[:2]))


def evaluate(matcher, rows: list[tuple[str, set[str]]]) -> dict:
    """Accuracy and confidence figures of the matcher on gold rows.

    ``top1``/``top3`` count a declined question as right when its gold is « none ».
    ``first_reply`` is the share of on-topic questions whose topic is in the first reply
    (the confident answer, or one of the topics of a hedge or a suggestion);
    ``first_reply_with_decline_suggestions`` also counts the three closest topics of a refusal.
    ``wrong_confident`` counts confident answers that are wrong (including on « none » rows).
    """
    top1 = top3 = on_topic = on_topic_top1 = first_reply = first_reply_with_decline = 0
    abstained = abstained_right = none_total = declined_right = 0
    wrong_confident = 0
    tiers: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    wrong_confident_rows: list[dict] = []
    for question, gold in rows:
        match = matcher.match(question)
        tiers[match.tier] += 1
        ranked = [match.topic] + [c.topic for c in match.alternatives] if match.topic else []
        if match.tier == "confident" and match.topic not in gold:
            wrong_confident += 1
            wrong_confident_rows.append(
                {"question": question, "gold": ",".join(sorted(gold)) or "none", "predicted": match.topic}
            )
        if not gold:
            none_total += 1
            declined_right += match.tier == "declined"
        else:
            on_topic += 1
            first_reply += bool(gold & set(offered_topics(match)))
            # A refusal also suggests topics: when those are the closest ones, they may hold the answer.
            closest = {c.topic for c in match.alternatives[:3]} if match.tier == "declined" else set()
            first_reply_with_decline += bool(gold & (set(offered_topics(match)) | closest))
        if match.topic is None:
            abstained += 1
            if not gold:
                abstained_right += 1
                top1 += 1
                top3 += 1
            else:
                confusions[(",".join(sorted(gold)), "none")] += 1
            continue
        if not gold:
            confusions[("none", match.topic)] += 1
            continue
        if match.topic in gold:
            top1 += 1
            on_topic_top1 += 1
        else:
            confusions[(",".join(sorted(gold)), match.topic)] += 1
        if gold & set(ranked[:3]):
            top3 += 1
    total = len(rows)
    confident = tiers["confident"]
    return {
        "questions": total,
        "top1": top1 / total if total else 0.0,
        "top3": top3 / total if total else 0.0,
        "on_topic_top1": on_topic_top1 / on_topic if on_topic else 0.0,
        "first_reply": first_reply / on_topic if on_topic else 1.0,
        "first_reply_with_decline_suggestions": first_reply_with_decline / on_topic if on_topic else 1.0,
        "offtopic_declined": declined_right / none_total if none_total else 1.0,
        "wrong_confident": wrong_confident,
        "wrong_confident_rate": wrong_confident / confident if confident else 0.0,
        "tiers": {tier: tiers[tier] for tier in TIERS},
        "abstention_precision": abstained_right / abstained if abstained else 1.0,
        "abstention_recall": abstained_right / none_total if none_total else 1.0,
        "wrong_confident_rows": wrong_confident_rows,
        "confusions": [
            {"gold": gold, "predicted": predicted, "count": count}
            for (gold, predicted), count in confusions.most_common()
        ],
    }


class WholeReading:
    """The whole understanding pipeline seen as a matcher, for :func:`evaluate` (what ``ptce-bot ask`` answers).

    Small talk and tools are not topic answers (a « none » row is then rightly declined), except a
    request for a person, answered with the contacts' page; a gap (« le document ne précise pas … »)
    shows its topic's page below the warning, like a hedged answer; a comparison shows its two
    topics; a glossary card is a confident answer on its term's topic.
    """

    def __init__(self, reader) -> None:
        self.reader = reader

    def match(self, question: str):
        from knowledge.matcher import Candidate, Match

        reading = self.reader.read(question)
        contact = self.reader.talk.contact_topic
        if reading.intent == "human" and contact in self.reader.kb.topics:
            return Match(contact, 1.0, (), False, "confident")
        if reading.decision in ("small_talk", "tool"):
            return Match(None, 0.0, (), False, "declined")
        if reading.decision == "gap" and reading.gap is not None:
            return Match(reading.gap.topic_id, 1.0, (), False, "hedged")
        if reading.decision == "glossary" and reading.term is not None and reading.term.topic:
            return Match(reading.term.topic, 1.0, (), False, "confident")
        if reading.decision == "compare" and reading.compare is not None:
            return Match(reading.compare[0], 1.0, (Candidate(reading.compare[1], 1.0),), False, "hedged")
        return reading.match


def _quality(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("confusions", "wrong_confident_rows")}


def print_side_by_side(blend: dict, alone: dict, whole: dict) -> None:
    """The figures users notice: the whole reading (what a user gets), the matcher's blend, the scorer alone."""
    print(f"{'':<34}{'lecture complète':>18}{'mélange':>10}{'score seul':>12}")
    rows = (
        ("Exactitude top-1", "top1"),
        ("Top-3", "top3"),
        ("Top-1 (hors « none »)", "on_topic_top1"),
        ("Bon sujet dès la 1re réponse", "first_reply"),
        ("  … avec les sujets d’un refus", "first_reply_with_decline_suggestions"),
        ("Hors sujet déclinés", "offtopic_declined"),
    )
    for label, key in rows:
        print(f"{label:<34}{whole[key]:>18.1%}{blend[key]:>10.1%}{alone[key]:>12.1%}")
    for name, report in (("lecture complète", whole), ("mélange", blend), ("score seul", alone)):
        confident = report["tiers"]["confident"]
        right = 1 - report["wrong_confident_rate"]
        print(f"Réponses sûres justes ({name}) : {right:.1%} de {confident}")
    print()


def eval_dialogues(args: argparse.Namespace) -> int:
    """Play every dialogue script of a folder against a fresh engine; print the pass rate per category."""
    from dialogue.corpus import pass_rates, run_corpus
    from dialogue.engine import Engine
    from dialogue.storage.progress import ProgressStore

    folder = Path(args.dialogues)
    if not folder.is_dir() or not any(folder.glob("*.yaml")):
        print(f"Erreur : aucun fichier YAML de dialogues dans {folder}", file=sys.stderr)
        return EXIT_USAGE
    engine = Engine(load_knowledge(args.data), ProgressStore.open(":memory:"))
    try:
        results = run_corpus(engine, folder)
    except (OSError, KeyError, TypeError, ValueError) as error:
        print(f"Erreur : scénario illisible dans {folder} : {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.close()
    rates = pass_rates(results)
    passed = sum(p for p, _ in rates.values())
    total = sum(t for _, t in rates.values())
    if args.json:
        print(json.dumps({
            "scripts": total,
            "passed": passed,
            "categories": {c: {"passed": p, "total": t} for c, (p, t) in sorted(rates.items())},
            "failures": [{"category": r.category, "script": r.name, "why": r.failures} for r in results if not r.passed],
        }, ensure_ascii=False, indent=2))
        return EXIT_OK
    width = max(len(c) for c in rates)
    for category, (ok, count) in sorted(rates.items()):
        print(f"{category:<{width}}  {ok:>3}/{count:<3}  {ok / count:.0%}")
    print(f"{'total':<{width}}  {passed:>3}/{total:<3}  {passed / total:.1%}")
    for result in results:
        if not result.passed:
            print(f"  échec [{result.category}] {result.name} : {result.failures[0]}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    """Print accuracy figures of the matcher on a TSV file, or the pass rate of a dialogue corpus."""
    from knowledge.matcher import Matcher

    if args.dialogues:
        return eval_dialogues(args)
    if not args.file:
        print("Erreur : indiquez un fichier TSV de questions, ou --dialogues DOSSIER", file=sys.stderr)
        return EXIT_USAGE

    kb = load_knowledge(args.data, with_flows=False)
    try:
        rows = read_gold(Path(args.file))
    except (OSError, ValueError) as error:
        print(f"Erreur : {error}", file=sys.stderr)
        return EXIT_USAGE
    unknown = sorted({g for _, gold in rows for g in gold} - set(kb.topics))
    if unknown:
        print(f"Erreur : sujets inconnus dans {args.file} : {', '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE
    matcher = Matcher.for_knowledge(kb)
    report = evaluate(matcher, rows)
    alone = evaluate(matcher.scorer_only(), rows)
    from dialogue.understanding.reading import Reader

    whole = evaluate(WholeReading(Reader.for_knowledge(kb)), rows)
    if args.json:
        print(json.dumps(report | {"scorer_alone": _quality(alone), "whole_reading": _quality(whole)}, ensure_ascii=False, indent=2))
        return EXIT_OK
    print_side_by_side(report, alone, whole)
    print(f"Questions               : {report['questions']}")
    print(f"Exactitude top-1        : {report['top1']:.1%}")
    print(f"Exactitude top-3        : {report['top3']:.1%}")
    print(f"Top-1 (hors « none »)   : {report['on_topic_top1']:.1%}")
    print(f"Abstention — précision  : {report['abstention_precision']:.1%}")
    print(f"Abstention — rappel     : {report['abstention_recall']:.1%}")
    print(f"Bon sujet dès la 1re réponse (réponse, nuance ou suggestions) : {report['first_reply']:.1%}")
    print(f"  … si un refus propose les 3 sujets les plus proches : {report['first_reply_with_decline_suggestions']:.1%}")
    print(f"Hors sujet déclinés     : {report['offtopic_declined']:.1%}")
    confident = report["tiers"]["confident"]
    print(f"Réponses sûres fausses  : {report['wrong_confident']} sur {confident} ({report['wrong_confident_rate']:.1%})")
    total = report["questions"] or 1
    print("Niveaux de confiance    : " + ", ".join(
        f"{TIER_LABELS[tier]} {count} ({count / total:.0%})" for tier, count in report["tiers"].items()
    ))
    for row in report["wrong_confident_rows"]:
        print(f"  sûre mais fausse : « {row['question']} » ({row['gold']} → {row['predicted']})")
    if report["confusions"]:
        print("Confusions (attendu → obtenu) :")
        for row in report["confusions"]:
            print(f"  {row['gold']} → {row['predicted']} ×{row['count']}")
    return EXIT_OK

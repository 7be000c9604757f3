"""Tuning aid for the matcher: k-fold cross-validation on the knowledge base's own example questions.

``python -m bench.matcher_cv [--folds 5] [--show]``: each fold removes every k-th example question of
every topic, rebuilds the matcher and asks the removed questions. Together with the dev set
(``tests/data/questions.tsv``) this is what the thresholds in ``lexicon.yaml`` are tuned on; the
user-written sets in ``bench/data/`` stay held out.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from bot.evaluation import evaluate, read_gold
from knowledge.loader import KnowledgeBase, load_knowledge
from knowledge.matcher import Matcher

ROOT = Path(__file__).resolve().parent.parent
DEV_SET = ROOT / "tests" / "data" / "questions.tsv"


def folds(kb: KnowledgeBase, count: int):
    """Yield (knowledge base without the fold's examples, gold rows of the removed examples)."""
    for fold in range(count):
        topics, rows = {}, []
        for topic in kb.topics.values():
            kept = tuple(q for i, q in enumerate(topic.questions) if i % count != fold)
            rows.extend((q, {topic.id}) for i, q in enumerate(topic.questions) if i % count == fold)
            topics[topic.id] = dataclasses.replace(topic, questions=kept)
        yield dataclasses.replace(kb, topics=topics), rows


def cross_validate(kb: KnowledgeBase, count: int = 5, *, scorer_only: bool = False) -> dict:
    """Each fold's removed examples asked to a matcher (and a learned model) built without them."""
    matchers = ((Matcher(sub), rows) for sub, rows in folds(kb, count))
    reports = [evaluate(m.scorer_only() if scorer_only else m, rows) | {"n": len(rows)} for m, rows in matchers]
    total = sum(r["n"] for r in reports)
    merged = {
        key: sum(r[key] * r["n"] for r in reports) / total
        for key in ("top1", "top3", "first_reply")
    }
    merged["wrong_confident"] = sum(r["wrong_confident"] for r in reports)
    merged["tiers"] = {t: sum(r["tiers"][t] for r in reports) for t in reports[0]["tiers"]}
    merged["questions"] = total
    merged["wrong_confident_rows"] = [row for r in reports for row in r["wrong_confident_rows"]]
    merged["confusions"] = [c for r in reports for c in r["confusions"]]
    return merged


def line(name: str, report: dict) -> str:
    tiers = report["tiers"]
    return (
        f"{name:<28} n={report['questions']:<4} top1={report['top1']:.1%} top3={report['top3']:.1%} "
        f"first={report['first_reply']:.1%} declined_off={report.get('offtopic_declined', float('nan')):.1%} "
        f"wrongconf={report['wrong_confident']} tiers={tiers['confident']}/{tiers['hedged']}/{tiers['suggest']}/{tiers['declined']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--show", action="store_true", help="list wrong confident answers and confusions")
    parser.add_argument("--heldout", action="store_true", help="also print the held-out sets (report only: never tune on them)")
    parser.add_argument("--calibrate", action="store_true", help="fit the learned model's temperature (learned_temperature in lexicon.yaml)")
    args = parser.parse_args(argv)
    kb = load_knowledge(with_flows=False)
    if args.calibrate:
        from knowledge.analyzer import Analyzer
        from knowledge.topic_model_training import CALIBRATION_FOLDS, calibrate

        temperature = calibrate(kb, Analyzer(kb.lexicon).rewrite)
        print(f"learned_temperature: {temperature}  ({CALIBRATION_FOLDS}-fold log-loss on the topics' own texts)")
    cv = cross_validate(kb, args.folds)
    dev = evaluate(Matcher(kb), read_gold(DEV_SET))
    print(line("examples, cross-validated", cv))
    alone = cross_validate(kb, args.folds, scorer_only=True)
    print(line("same, scorer alone", alone))
    print(line("dev set", dev))
    sets = [("examples cv", cv), ("dev", dev)]
    if args.heldout:
        for path in sorted((ROOT / "bench" / "data").glob("*.tsv")):
            rows = read_gold(path)
            if {g for _, gold in rows for g in gold} <= set(kb.topics):
                report = evaluate(Matcher(kb), rows)
                print(line(path.name, report))
    if args.show:
        for name, report in sets:
            for row in report["wrong_confident_rows"]:
                print(f"  [{name}] sure but wrong: {row['question']!r} {row['gold']} -> {row['predicted']}")
            for row in report["confusions"]:
                print(f"  [{name}] confusion: {row['gold']} -> {row['predicted']} x{row['count']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``ptce-bot`` command line: ask, eval, kb check, chat, telegram, graph."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from knowledge.errors import KnowledgeError, KnowledgeErrors

EXIT_OK = 0
EXIT_INVALID_KNOWLEDGE = 1
EXIT_USAGE = 2


def _version() -> str:
    try:
        return version("ptce-advisor")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0+unknown"


def _load(args: argparse.Namespace, *, with_flows: bool = True):
    from knowledge.loader import load_knowledge

    return load_knowledge(args.data, with_flows=with_flows)


def _answer_json(kb, matcher, question: str) -> dict:
    from dialogue.texts import match_answer, typeset

    match = matcher.match(question)
    return {
        "topic": match.topic,
        "score": match.score,
        "alternatives": [{"topic": c.topic, "score": c.score} for c in match.alternatives],
        "ambiguous": match.ambiguous,
        "answer": typeset(match_answer(kb, match)),
    }


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question, or one per line of standard input as JSON Lines."""
    from dialogue.texts import match_answer, typeset
    from knowledge.matcher import Matcher

    kb = _load(args, with_flows=False)
    matcher = Matcher(kb)
    if args.question is None:
        for line in sys.stdin:
            question = line.rstrip("\n")
            if not question.strip():
                continue
            print(json.dumps(_answer_json(kb, matcher, question), ensure_ascii=False), flush=True)
        return EXIT_OK
    if args.json:
        print(json.dumps(_answer_json(kb, matcher, args.question), ensure_ascii=False))
    else:
        print(typeset(match_answer(kb, matcher.match(args.question))).replace("**", ""))
    return EXIT_OK


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


def evaluate(matcher, rows: list[tuple[str, set[str]]]) -> dict:
    """Accuracy figures of the matcher on gold rows."""
    top1 = top3 = on_topic = on_topic_top1 = 0
    abstained = abstained_right = none_total = 0
    confusions: Counter[tuple[str, str]] = Counter()
    for question, gold in rows:
        match = matcher.match(question)
        ranked = [match.topic] + [c.topic for c in match.alternatives] if match.topic else []
        if not gold:
            none_total += 1
        else:
            on_topic += 1
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
    return {
        "questions": total,
        "top1": top1 / total if total else 0.0,
        "top3": top3 / total if total else 0.0,
        "on_topic_top1": on_topic_top1 / on_topic if on_topic else 0.0,
        "abstention_precision": abstained_right / abstained if abstained else 1.0,
        "abstention_recall": abstained_right / none_total if none_total else 1.0,
        "confusions": [
            {"gold": gold, "predicted": predicted, "count": count}
            for (gold, predicted), count in confusions.most_common()
        ],
    }


def eval_dialogues(args: argparse.Namespace) -> int:
    """Play every dialogue script of a folder against a fresh engine; print the pass rate per category."""
    from dialogue.corpus import pass_rates, run_corpus
    from dialogue.engine import Engine
    from dialogue.store import ProgressStore

    folder = Path(args.dialogues)
    if not folder.is_dir() or not any(folder.glob("*.yaml")):
        print(f"Erreur : aucun fichier YAML de dialogues dans {folder}", file=sys.stderr)
        return EXIT_USAGE
    engine = Engine(_load(args), ProgressStore.open(":memory:"))
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

    kb = _load(args, with_flows=False)
    try:
        rows = read_gold(Path(args.file))
    except (OSError, ValueError) as error:
        print(f"Erreur : {error}", file=sys.stderr)
        return EXIT_USAGE
    unknown = sorted({g for _, gold in rows for g in gold} - set(kb.topics))
    if unknown:
        print(f"Erreur : sujets inconnus dans {args.file} : {', '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE
    report = evaluate(Matcher(kb), rows)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"Questions               : {report['questions']}")
    print(f"Exactitude top-1        : {report['top1']:.1%}")
    print(f"Exactitude top-3        : {report['top3']:.1%}")
    print(f"Top-1 (hors « none »)   : {report['on_topic_top1']:.1%}")
    print(f"Abstention — précision  : {report['abstention_precision']:.1%}")
    print(f"Abstention — rappel     : {report['abstention_recall']:.1%}")
    if report["confusions"]:
        print("Confusions (attendu → obtenu) :")
        for row in report["confusions"]:
            print(f"  {row['gold']} → {row['predicted']} ×{row['count']}")
    return EXIT_OK


def cmd_kb_check(args: argparse.Namespace) -> int:
    """Validate the knowledge files, report coverage and misrouted example questions."""
    from knowledge.matcher import Matcher

    kb = _load(args)
    print(f"Base de connaissances valide : {len(kb.topics)} sujets, {len(kb.glossary)} termes du glossaire, "
          f"{len(kb.flows)} parcours (version {kb.version}).")
    problems = 0
    cited = {topic.source.chapter for topic in kb.topics.values()}
    missing = [number for number in kb.document.chapters if number not in cited]
    print(f"Chapitres cités : {len(cited & set(kb.document.chapters))}/{len(kb.document.chapters)}")
    for number in missing:
        print(f"  ERREUR : aucun sujet ne cite le chapitre {number} ({kb.document.chapters[number].title})")
        problems += 1
    print(f"Questions de l’introduction couvertes : {len(kb.document.intro_questions)}")
    for question in kb.document.intro_questions:
        print(f"  « {question.question} » → {', '.join(question.topics)}")
    matcher = Matcher(kb)
    misrouted = []
    for topic in kb.topics.values():
        for question in topic.questions:
            match = matcher.match(question)
            if match.topic != topic.id:
                misrouted.append((topic.id, question, match.topic))
    total = sum(len(t.questions) for t in kb.topics.values())
    print(f"Exemples bien aiguillés : {total - len(misrouted)}/{total}")
    for topic_id, question, got in misrouted:
        print(f"  à revoir : « {question} » ({topic_id}) → {got or 'aucun sujet'}")
    return EXIT_INVALID_KNOWLEDGE if problems else EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.terminal import run_chat

    return run_chat(args)


def cmd_telegram(args: argparse.Namespace) -> int:
    from bot import telegram

    return telegram.run(args)


def cmd_graph(args: argparse.Namespace) -> int:
    from dialogue.graph import write_graph

    kb = _load(args)
    path = write_graph(kb, Path(args.output))
    print(f"Diagramme écrit dans {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptce-bot",
        description="Conseiller PTCE : réponses tirées du document « PTCE — Analyse des récurrences & ingénierie » (Institut Godin).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--data", type=Path, default=None, help="dossier des fichiers YAML (par défaut : celui du paquet)")
    sub = parser.add_subparsers(dest="command", metavar="COMMANDE")

    ask = sub.add_parser("ask", help="poser une question et afficher la réponse")
    ask.add_argument("question", nargs="?", help="la question ; sans elle, une question par ligne sur l’entrée standard (JSON Lines)")
    ask.add_argument("--json", action="store_true", help="sortie JSON")
    ask.set_defaults(handler=cmd_ask)

    ev = sub.add_parser("eval", help="mesurer l’aiguillage des questions (TSV) ou jouer un corpus de dialogues (--dialogues)")
    ev.add_argument("file", nargs="?")
    ev.add_argument("--dialogues", metavar="DOSSIER", default=None, help="dossier de scénarios YAML : taux de réussite par catégorie")
    ev.add_argument("--json", action="store_true", help="sortie JSON")
    ev.set_defaults(handler=cmd_eval)

    kb = sub.add_parser("kb", help="outils de la base de connaissances")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="ACTION", required=True)
    check = kb_sub.add_parser("check", help="valider les fichiers YAML et rapporter la couverture")
    check.set_defaults(handler=cmd_kb_check)

    chat = sub.add_parser("chat", help="discuter avec le conseiller dans le terminal")
    chat.add_argument("--user", default=None, help="nom de l’utilisateur (progression gardée par nom)")
    chat.add_argument("--db", type=Path, default=None, help="fichier SQLite (par défaut : $PTCE_DB ou ptce.db)")
    chat.set_defaults(handler=cmd_chat)

    tg = sub.add_parser("telegram", help="lancer le bot Telegram (jeton dans TELEGRAM_BOT_TOKEN)")
    tg.add_argument("--db", type=Path, default=None, help="fichier SQLite (par défaut : $PTCE_DB ou ptce.db)")
    try:
        from bot import telegram

        telegram.add_arguments(tg)
    except ImportError:  # pragma: no cover - telegram extras missing
        pass
    tg.set_defaults(handler=cmd_telegram)

    graph = sub.add_parser("graph", help="écrire le diagramme Mermaid des parcours dans docs/")
    graph.add_argument("--output", default="docs/flows.md", help="fichier de sortie (défaut : docs/flows.md)")
    graph.set_defaults(handler=cmd_graph)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except (KnowledgeError, KnowledgeErrors) as error:
        print("Base de connaissances invalide :", file=sys.stderr)
        print(str(error), file=sys.stderr)
        return EXIT_INVALID_KNOWLEDGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

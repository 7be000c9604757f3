"""The ``ptce-bot`` command line: ask, eval, kb check, chat, telegram, graph."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from knowledge.errors import KnowledgeError, KnowledgeErrors

EXIT_OK = 0
EXIT_INVALID_KNOWLEDGE = 1
EXIT_USAGE = 2


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # ≈ 30 ms: only for --version

    try:
        return version("ptce-advisor")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0+unknown"


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked for (not at every start)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser._print_message(f"{parser.prog} {_version()}\n", sys.stdout)
        parser.exit()


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
        "tier": match.tier,
        "answer": typeset(match_answer(kb, match)),
    }


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question, or one per line of standard input as JSON Lines."""
    from dialogue.texts import match_answer, typeset
    from knowledge.matcher import Matcher

    kb = _load(args, with_flows=False)
    matcher = Matcher.for_knowledge(kb)
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


def eval_dialogues(args: argparse.Namespace) -> int:
    """Play every dialogue script of a folder against a fresh engine; print the pass rate per category."""
    from dialogue.corpus import pass_rates, run_corpus
    from dialogue.engine import Engine
    from dialogue.storage.progress import ProgressStore

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
    report = evaluate(Matcher.for_knowledge(kb), rows)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return EXIT_OK
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
    from knowledge.debate import DEBATE_FILE, load_debate
    from knowledge.flows import answer_keys

    debate = load_debate(kb.document, answer_keys(kb.flows), (args.data / DEBATE_FILE) if args.data else None)
    print(f"Points à mettre en débat (/collectif) : {len(debate.points)}")
    print(f"Questions de l’introduction couvertes : {len(kb.document.intro_questions)}")
    for question in kb.document.intro_questions:
        print(f"  « {question.question} » → {', '.join(question.topics)}")
    matcher = Matcher.for_knowledge(kb)
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
    if args.against is not None:
        if not args.against.is_file():
            print(f"Erreur : document de référence introuvable : {args.against}", file=sys.stderr)
            return EXIT_USAGE
        problems += _check_against(args)
    if getattr(args, "suggestions", None):
        from bot.team_cli import check_suggestions

        collisions = check_suggestions(kb, args.suggestions)
        print(f"Suggestions à relire : {len(collisions)} collision(s)")
        for line in collisions:
            print(f"  ATTENTION : {line}")
    return EXIT_INVALID_KNOWLEDGE if problems else EXIT_OK


_AGAINST_HINTS = {
    "valeur": "vérifiez-la dans le document ; juste mais absente du texte, ajoutez-la à source_exceptions.yaml (values) avec une raison",
    "copie": "reformulez avec vos propres mots",
    "non couvert": "retirez cet exemple de « questions » (ou ce mot-clé) : le conseiller répondra « le document ne précise pas »",
    "promesse": "retirez l’exemple, déclarez le mot dans « not_covered », ou acceptez-le dans source_exceptions.yaml (words) avec une raison",
}
_AGAINST_TITLES = {
    "valeur": "Nombres et noms propres absents du document",
    "copie": "Passages recopiés (12 mots ou plus)",
    "non couvert": "Exemples qui demandent ce que le sujet dit ne pas couvrir",
    "promesse": "Exemples et mots-clés qui évoquent un contenu absent du document",
}


def _check_against(args: argparse.Namespace) -> int:
    """Compare the knowledge with the reference text; returns the number of problems."""
    from knowledge.loader import DATA_DIR
    from knowledge.source_check import check_against

    report = check_against(args.data or DATA_DIR, args.against)
    print(f"Comparaison avec {args.against.name} : {report.texts} textes lus, "
          f"{len(report.problems)} problème(s), {len(report.hints)} exemple(s) à revoir.")
    for kind, title in _AGAINST_TITLES.items():
        found = [finding for finding in report.findings if finding.kind == kind]
        if found:
            print(f"{title} ({len(found)}) — {_AGAINST_HINTS[kind]} :")
            label = "à revoir" if kind == "promesse" else "ERREUR"
            for finding in found:
                print(f"  {label} : {finding.describe()}")
    for unused in report.unused_exceptions:
        print(f"  note : exception devenue inutile dans source_exceptions.yaml : {unused}")
    return len(report.problems)


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.terminal import run_chat

    return run_chat(args)


class SubcommandParser(argparse.ArgumentParser):
    """A sub-command's parser whose options may be added only when that sub-command is used.

    The Telegram options live in the Telegram package: reading them at every start would
    import it for ``ptce-bot ask`` too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[argparse.ArgumentParser], None]] = []

    def defer(self, add_options: Callable[[argparse.ArgumentParser], None]) -> None:
        self._deferred.append(add_options)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        while self._deferred:
            self._deferred.pop(0)(self)
        return super().parse_known_args(args, namespace)


def add_telegram_arguments(parser: argparse.ArgumentParser) -> None:
    from bot.telegram.config import add_arguments

    add_arguments(parser)


def cmd_telegram(args: argparse.Namespace) -> int:
    from bot.telegram.app import run  # python-telegram-bot is imported here only

    return run(args)


def cmd_export(args: argparse.Namespace) -> int:
    """Write a user's PDF report and profile picture, as the chat's « Recevoir le document (PDF) » does."""
    from datetime import date

    from bot.report_files import default_directory, write_files
    from dialogue.features.report_request import ptce_name
    from dialogue.storage.errors import StorageError
    from dialogue.storage.progress import ProgressStore
    from dialogue.types import ReportRequest

    kb = _load(args)
    try:
        store = ProgressStore.open(args.db)
    except StorageError as error:
        print(f"Impossible d’ouvrir la base de données : {error}", file=sys.stderr)
        return EXIT_INVALID_KNOWLEDGE
    try:
        # Terminal users are stored as « cli:NAME »; a full id (« tg:… ») is accepted as is.
        user_id = args.user if ":" in args.user else f"cli:{args.user}"
        record = store.load(user_id)
    finally:
        store.close()
    if record is None:
        print(f"Aucun utilisateur « {args.user} » dans la base de données.", file=sys.stderr)
        return EXIT_USAGE
    questions = {q.id for flow in kb.flows.values() for step in flow.steps for q in step.questions}
    request = ReportRequest(
        kind="formes" if record.flow == "formes" else "synthesis",
        answers={key: value for key, value in record.answers.items() if key in questions},
        day=date.today(),
        ptce_name=ptce_name(record),
    )
    directory = Path(args.out) if args.out else default_directory(args.db)
    return EXIT_OK if write_files(kb, request, directory, sys.stdout) else EXIT_USAGE


def cmd_graph(args: argparse.Namespace) -> int:
    from dialogue.flows.graph import write_graph

    kb = _load(args)
    path = write_graph(kb, Path(args.output))
    print(f"Diagramme écrit dans {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptce-bot",
        description="Conseiller PTCE : réponses tirées du document « PTCE — Analyse des récurrences & ingénierie » (Institut Godin).",
    )
    parser.add_argument("--version", action=_VersionAction, help="show program's version number and exit")
    parser.add_argument("--data", type=Path, default=None, help="dossier des fichiers YAML (par défaut : celui du paquet)")
    sub = parser.add_subparsers(dest="command", metavar="COMMANDE", parser_class=SubcommandParser)

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
    check.add_argument(
        "--against",
        type=Path,
        default=None,
        metavar="FICHIER.txt",
        help="comparer aussi avec le texte du document de référence (nombres, noms propres, copies, exemples)",
    )
    check.add_argument(
        "--suggestions", type=Path, metavar="FICHIER.yaml", help="signaler les suggestions qui entreraient en collision avec un autre sujet"
    )
    check.set_defaults(handler=cmd_kb_check)

    chat = sub.add_parser("chat", help="discuter avec le conseiller dans le terminal")
    chat.add_argument("--user", default=None, help="nom de l’utilisateur (progression gardée par nom)")
    chat.add_argument("--db", type=Path, default=None, help="fichier SQLite (par défaut : $PTCE_DB ou ptce.db)")
    chat.add_argument("--out", type=Path, default=None, help="dossier du document PDF (par défaut : celui de la base)")
    chat.set_defaults(handler=cmd_chat)

    export = sub.add_parser("export", help="écrire la synthèse PDF et l’image du profil d’un utilisateur")
    export.add_argument("--user", required=True, help="nom de l’utilisateur du chat (ou identifiant complet, ex. tg:…)")
    export.add_argument("--out", type=Path, default=None, help="dossier de sortie (par défaut : celui de la base)")
    export.add_argument("--db", type=Path, default=None, help="fichier SQLite (par défaut : $PTCE_DB ou ptce.db)")
    export.set_defaults(handler=cmd_export)

    tg = sub.add_parser("telegram", help="lancer le bot Telegram (jeton dans TELEGRAM_BOT_TOKEN)")
    tg.add_argument("--db", type=Path, default=None, help="fichier SQLite (par défaut : $PTCE_DB ou ptce.db)")
    tg.defer(add_telegram_arguments)
    tg.set_defaults(handler=cmd_telegram)

    # The team's commands (issue 12): question-log options, inbox, insights.
    from bot import team_cli

    team_cli.add_log_arguments(chat)
    team_cli.add_log_arguments(tg)
    team_cli.add_commands(sub, "fichier SQLite (par défaut : $PTCE_DB ou ptce.db)")

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

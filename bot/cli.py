"""The ``ptce-bot`` command line: ask, eval, kb check, chat, telegram, web, graph."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.exit_codes import EXIT_INVALID_KNOWLEDGE, EXIT_OK, EXIT_USAGE
from knowledge.errors import KnowledgeError, KnowledgeErrors


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


def _answer_json(kb, reader, question: str) -> dict:
    from bot.ask import explanation, reply_text
    from dialogue.texts import typeset

    reading = reader.read(question)
    match = reading.match
    return {
        "decision": reading.decision,
        "topic": reading.gap.topic_id if reading.gap else match.topic if match else None,
        "score": match.score if match else None,
        "alternatives": [{"topic": c.topic, "score": c.score} for c in match.alternatives] if match else [],
        "ambiguous": match.ambiguous if match else False,
        "tier": match.tier if match else None,
        "answer": typeset(reply_text(kb, reading)),
        "explain": explanation(reader, reading),
    }


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question (what a new user gets), or one per line of standard input as JSON Lines."""
    from bot.ask import explanation, reply_text
    from dialogue.texts import typeset
    from dialogue.understanding.reading import Reader

    kb = _load(args, with_flows=False)
    reader = Reader.for_knowledge(kb)
    if args.question is None:
        for line in sys.stdin:
            question = line.rstrip("\n")
            if not question.strip():
                continue
            print(json.dumps(_answer_json(kb, reader, question), ensure_ascii=False), flush=True)
        return EXIT_OK
    if args.json:
        print(json.dumps(_answer_json(kb, reader, args.question), ensure_ascii=False))
        return EXIT_OK
    reading = reader.read(args.question)
    if args.explain:
        print("\n".join(explanation(reader, reading)))
        print()
    print(typeset(reply_text(kb, reading)).replace("**", ""))
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from bot.evaluation import cmd_eval as run_eval  # the evaluation imports the matcher and its figures

    return run_eval(args)


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
    from bot.ask import gap_problems

    checked, gap_issues = gap_problems(kb)
    print(f"Manques du document (not_covered) : {checked}, déclencheurs imprécis : {len(gap_issues)}")
    for issue in gap_issues:
        print(f"  ERREUR : {issue}")
    problems += len(gap_issues)
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
    "citation": "corrigez le texte ou sa page ; juste malgré tout, ajoutez « entrée › valeur » à source_exceptions.yaml (citations) avec une raison",
    "non couvert": "retirez cet exemple de « questions » (ou ce mot-clé) : le conseiller répondra « le document ne précise pas »",
    "promesse": "retirez l’exemple, déclarez le mot dans « not_covered », ou acceptez-le dans source_exceptions.yaml (words) avec une raison",
}
_AGAINST_TITLES = {
    "valeur": "Nombres et noms propres absents du document",
    "copie": "Passages recopiés (12 mots ou plus)",
    "citation": "Affirmations que la page citée ne porte pas (chiffres, proportions, nuances, sens, termes clés)",
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


def add_web_arguments(parser: argparse.ArgumentParser) -> None:
    from bot.web.config import add_arguments

    add_arguments(parser)


def cmd_web(args: argparse.Namespace) -> int:
    from bot.web.app import run  # Starlette and uvicorn are imported here only

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
    ask.add_argument("--explain", action="store_true", help="afficher chaque étape de la compréhension et les scores")
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

    web = sub.add_parser("web", help="servir le conseiller sur une page web (http://127.0.0.1:8080 par défaut)")
    web.add_argument("--db", type=Path, default=None, help="fichier SQLite (par défaut : $PTCE_DB ou ptce.db)")
    web.defer(add_web_arguments)
    web.set_defaults(handler=cmd_web)

    # The team's commands (issue 12): question-log options, inbox, insights.
    from bot import team_cli

    team_cli.add_log_arguments(chat)
    team_cli.add_log_arguments(tg)
    team_cli.add_log_arguments(web)
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

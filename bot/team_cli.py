"""``ptce-bot inbox`` and ``ptce-bot insights``: the team's commands, and the question-log options."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.exit_codes import EXIT_INVALID_KNOWLEDGE as EXIT_ERROR
from bot.exit_codes import EXIT_OK
from dialogue.clock import iso, utc_now
from dialogue.features.team.question_log import DEFAULT_LOG_DAYS, retry_locked
from dialogue.storage.files import write_private


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that run the engine (chat, telegram)."""
    parser.add_argument(
        "--log-days", type=int, default=DEFAULT_LOG_DAYS, help=f"durée de conservation des questions, en jours (défaut : {DEFAULT_LOG_DAYS})"
    )
    parser.add_argument("--no-question-log", action="store_true", help="ne pas enregistrer les questions posées")


def engine_options(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> dict:
    """The engine's options from the command line, and the operator's contact from ``PTCE_TEAM_CONTACT``."""
    environ = os.environ if environ is None else environ
    return {
        "log_questions": not getattr(args, "no_question_log", False),
        "log_days": getattr(args, "log_days", DEFAULT_LOG_DAYS),
        "operator_contact": " ".join(environ.get("PTCE_TEAM_CONTACT", "").split())[:200],
    }


def add_commands(sub, db_help: str) -> None:
    inbox = sub.add_parser("inbox", help="questions transmises à l’équipe, en attente de réponse")
    inbox.add_argument("--db", type=Path, default=None, help=db_help)
    inbox_sub = inbox.add_subparsers(dest="inbox_command", metavar="ACTION")
    answer = inbox_sub.add_parser("answer", help="répondre à une question transmise")
    answer.add_argument("ref", type=int, help="numéro de référence")
    answer.add_argument("text", help="la réponse, en français")
    inbox.set_defaults(handler=cmd_inbox)

    insights = sub.add_parser("insights", help="tableau de bord : questions, avis, questions à revoir, parcours")
    insights.add_argument("--db", type=Path, default=None, help=db_help)
    insights.add_argument("--since", help="premier jour (AAAA-MM-JJ)")
    insights.add_argument("--until", help="dernier jour inclus (AAAA-MM-JJ)")
    insights.add_argument("--json", action="store_true", help="sortie JSON")
    insights.add_argument("--html", type=Path, metavar="FICHIER", help="écrire une page HTML autonome avec graphiques")
    insights.add_argument("--suggest", type=Path, metavar="FICHIER.yaml", help="écrire des exemples de questions candidats, à relire")
    insights_sub = insights.add_subparsers(dest="insights_command", metavar="ACTION")
    assign = insights_sub.add_parser("assign", help="rattacher une question de la boîte de réception à un sujet")
    assign.add_argument("question")
    assign.add_argument("topic")
    insights.set_defaults(handler=cmd_insights)


def _open(args: argparse.Namespace):
    from dialogue.assembly import open_store

    return open_store(args.db)


def cmd_inbox(args: argparse.Namespace) -> int:
    from dialogue.features.team.handovers import HandoverStore

    store = _open(args)
    try:
        queue = HandoverStore(store.db)
        if args.inbox_command == "answer":
            if not args.text.strip():
                print("La réponse est vide.", file=sys.stderr)
                return EXIT_ERROR
            item = retry_locked(lambda: queue.answer(args.ref, args.text))
            if item is None:
                print(f"Aucune question transmise sous la référence {args.ref}.", file=sys.stderr)
                return EXIT_ERROR
            print(f"Réponse enregistrée pour la référence {item.ref} : elle sera remise à la personne dès que possible.")
            return EXIT_OK
        items = queue.open_items()
        if not items:
            print("Aucune question en attente.")
        for item in items:
            print(f"n° {item.ref} — {item.created_at[:16].replace('T', ' ')} — « {item.question} »")
            for message in item.recent:
                print(f"    contexte : « {message} »")
        return EXIT_OK
    finally:
        store.close()


def cmd_insights(args: argparse.Namespace) -> int:
    from bot import insights as ins
    from knowledge.loader import load_knowledge

    kb = load_knowledge(getattr(args, "data", None))
    store = _open(args)
    try:
        if args.insights_command == "assign":
            if args.topic not in kb.topics:
                print(f"Sujet inconnu : {args.topic}", file=sys.stderr)
                return EXIT_ERROR
            from knowledge.text import normalise

            def write() -> None:
                with store.db.atomic():
                    store.db.execute(
                        "INSERT INTO team_assignments (text, topic, at) VALUES (?, ?, ?) "
                        "ON CONFLICT (text) DO UPDATE SET topic = excluded.topic, at = excluded.at",
                        [normalise(args.question), args.topic, iso(utc_now())],
                    )

            retry_locked(write)
            print(f"« {args.question} » rattachée à {args.topic}.")
            return EXIT_OK
        try:
            since, until = ins.parse_day(args.since), ins.parse_day(args.until, end=True)
        except ValueError:
            print("Dates attendues au format AAAA-MM-JJ, par exemple --since 2026-03-01.", file=sys.stderr)
            return EXIT_ERROR
        data = ins.compute(store.db, kb, since=since, until=until)
        if args.html:
            from bot.insights_html import write_html

            write_html(data, kb, args.html)
            print(f"Page écrite : {args.html}")
        if args.suggest:
            count = write_suggestions(store.db, kb, args.suggest)
            print(f"{count} exemple(s) candidat(s) écrit(s) dans {args.suggest}, à relire avant de les copier dans topics.yaml.")
        if args.json:
            print(data.to_json())
        elif not args.html and not args.suggest:
            print(ins.render_text(data, kb))
        return EXIT_OK
    finally:
        store.close()


def write_suggestions(db, kb, path: Path, *, minimum: int = 1) -> int:
    """Candidate example questions per topic: 👍 answers and expert assignments, minus known examples."""
    import yaml

    from knowledge.text import normalise

    known = {normalise(q) for topic in kb.topics.values() for q in topic.questions}
    candidates: dict[str, dict[str, int]] = {}
    for text, topic, count in db.execute(
        "SELECT text, topic, COUNT(*) FROM question_log WHERE feedback = 1 AND topic IS NOT NULL GROUP BY text, topic HAVING COUNT(*) >= ?",
        [minimum],
    ):
        candidates.setdefault(topic, {})[text] = count
    for text, topic in db.execute("SELECT text, topic FROM team_assignments"):
        candidates.setdefault(topic, {})[text] = candidates.get(topic, {}).get(text, 0) + 1
    out = {
        topic: sorted((t for t in texts if t not in known), key=lambda t: -texts[t])
        for topic, texts in sorted(candidates.items())
        if topic in kb.topics
    }
    out = {topic: texts for topic, texts in out.items() if texts}
    header = (
        "# Exemples de questions candidats, tirés des questions des utilisateurs (👍) et des rattachements des experts.\n"
        "# À relire : copier les bons à la fin de la liste « questions: » du sujet dans knowledge/data/topics.yaml,\n"
        "# puis lancer « ptce-bot kb check --suggestions CE_FICHIER » pour repérer les collisions.\n"
    )
    write_private(path, header + yaml.safe_dump(out, allow_unicode=True, sort_keys=True))  # users' questions
    return sum(len(t) for t in out.values())


def check_suggestions(kb, path: Path) -> list[str]:
    """Suggestions the matcher would route to another topic (they would blur two topics)."""
    import yaml

    from knowledge.matcher import Matcher

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    matcher = Matcher.for_knowledge(kb)
    problems = []
    for topic, questions in data.items():
        if topic not in kb.topics:
            problems.append(f"suggestion pour un sujet inconnu : {topic}")
            continue
        for question in questions or []:
            match = matcher.match(str(question))
            if match.topic not in (None, topic):
                problems.append(f"« {question} » (proposée pour {topic}) est aujourd’hui aiguillée vers {match.topic} : collision possible")
    return problems

"""The team behind the bot: question log, feedback, hand-over, privacy, insights figures."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone

from sqlite_utils import Database

from bot import insights
from bot.cli import main
from dialogue.engine import Engine
from dialogue.features.registry import standard_features
from dialogue.features.team.flow import TeamServices
from dialogue.features.team.handovers import HandoverStore
from dialogue.features.team.question_log import QuestionLog
from dialogue.features.team.schema import ensure_team_tables
from dialogue.storage.progress import ProgressStore
from knowledge.text import normalise
from tests.conversation import Chat

RAW_ID = "tg:123456789"


def _log_rows(store: ProgressStore) -> list[dict]:
    return list(store.db.query("SELECT * FROM question_log ORDER BY id"))


def _button(chat: Chat, label_part: str):
    return next(b for b in chat.buttons if label_part in b.label)


def test_questions_are_logged_with_hash_tier_and_feedback(kb, store) -> None:
    chat = Chat(Engine(kb, store), user=RAW_ID)
    chat.send("/start")
    chat.send("Qu’est-ce qu’un PTCE exactement ?")
    rows = chat.replies[0].buttons
    assert [b.label for b in rows[-2]] == ["👍", "👎"] and rows[-1][-1].label == "Menu"  # discreet: just above « Menu »
    assert all(len(b.payload.encode()) <= 64 for row in rows for b in row)
    chat.choose(_button(chat, "👍").payload)
    assert "Merci" in chat.replies[0].text
    chat.send("Quel temps fera-t-il demain à Brest ?")
    rows = _log_rows(store)
    assert [(r["topic"], r["tier"], r["feedback"]) for r in rows] == [
        ("ptce.definition", "confident", 1),
        (None, "declined", None),
    ]
    assert rows[0]["text"] == normalise("Qu’est-ce qu’un PTCE exactement ?")
    assert len(rows[0]["user_hash"]) == 32 and rows[0]["user_hash"] == rows[1]["user_hash"]
    dump = json.dumps(rows, ensure_ascii=False)
    assert "123456789" not in dump and RAW_ID not in dump
    # The hash is salted: the same id hashes differently in another database.
    other = ProgressStore(Database(memory=True))
    assert QuestionLog(other.db).user_hash(RAW_ID) != rows[0]["user_hash"]


def test_thumbs_down_asks_what_was_missing_once_and_offers_next_topics(kb, store) -> None:
    chat = Chat(Engine(kb, store), user=RAW_ID)
    chat.send("Qu’est-ce qu’un PTCE exactement ?")
    chat.choose(_button(chat, "👎").payload)
    assert "Qu’est-ce qui manquait" in chat.replies[0].text
    topics = [b for b in chat.buttons if b.payload.startswith("t:")]
    assert len(topics) == 2
    chat.send("des exemples concrets")
    assert "noté" in chat.replies[0].text
    row = _log_rows(store)[0]
    assert (row["feedback"], row["comment"]) == (-1, "des exemples concrets")
    # Asked once: the next text is a question again.
    chat.send("Comment financer un PTCE ?")
    assert len(_log_rows(store)) == 2


def test_terminal_plus_and_minus_give_feedback(kb, store) -> None:
    chat = Chat(Engine(kb, store))
    chat.send("Qu’est-ce qu’un PTCE exactement ?")
    chat.send("-")
    assert "Qu’est-ce qui manquait" in chat.replies[0].text
    chat.send("/menu")
    chat.send("Comment financer un PTCE ?")
    chat.send("+")
    assert [r["feedback"] for r in _log_rows(store)] == [-1, 1]


def test_two_thumbs_down_or_two_declined_offer_the_team(kb, store) -> None:
    chat = Chat(Engine(kb, store))
    chat.send("Qu’est-ce qu’un PTCE exactement ?")
    chat.choose(_button(chat, "👎").payload)
    assert "Transmettre ma question à l’équipe" not in chat.labels
    chat.send("Comment financer un PTCE ?")
    chat.choose(_button(chat, "👎").payload)
    assert "Transmettre ma question à l’équipe" in chat.labels

    other = Chat(Engine(kb, store), user="other")
    other.send("recette de la tarte aux pommes")
    assert "Transmettre ma question à l’équipe" not in other.labels
    other.send("horaires de la piscine municipale")
    assert "Transmettre ma question à l’équipe" in other.labels


def test_hand_over_needs_consent_and_is_capped_without_team_chat(kb, store) -> None:
    chat = Chat(Engine(kb, store), user=RAW_ID)
    chat.send("Quel est le prix du gazole ?")
    chat.send("Je veux parler à quelqu’un")
    assert "Rien n’est envoyé sans votre accord" in chat.replies[0].text
    assert store.db["handovers"].count == 0
    chat.choose("tm:h")
    assert "« Quel est le prix du gazole ? »" in chat.replies[0].text.replace("\xa0", " ")
    assert store.db["handovers"].count == 0
    chat.choose("tm:h3")
    text = chat.replies[0].text
    assert "C’est transmis à l’équipe" in text and "contact@institutgodin.fr" in text and "Aucun conseiller" in text
    item = HandoverStore(store.db).get(1)
    assert item.question == "Quel est le prix du gazole ?" and item.recent == ("Je veux parler à quelqu’un",)
    for _ in range(2):
        chat.choose("tm:h")
        chat.choose("tm:h1")
    chat.choose("tm:h")
    chat.choose("tm:h1")
    assert "déjà trois questions" in chat.replies[0].text
    assert store.db["handovers"].count == 3


def test_answer_from_the_command_line_is_delivered_at_the_next_message(kb, tmp_path, capsys) -> None:
    path = tmp_path / "p.db"
    store = ProgressStore.open(path)
    chat = Chat(Engine(kb, store), user="cli:alice")
    chat.send("Je veux parler à quelqu’un")
    chat.choose("tm:h")
    chat.send("Où trouver un local pour notre PTCE ?")
    chat.choose("tm:h1")
    assert main(["inbox", "--db", str(path)]) == 0
    assert "n° 1" in capsys.readouterr().out
    assert main(["inbox", "--db", str(path), "answer", "1", "Contactez votre mairie."]) == 0
    assert main(["inbox", "--db", str(path), "answer", "99", "x"]) == 1
    chat.send("/menu")
    assert chat.replies[0].text.startswith("**Réponse de l’équipe**") and "Contactez votre mairie." in chat.replies[0].text
    chat.send("/menu")
    assert "Réponse de l’équipe" not in chat.replies[0].text  # delivered once
    capsys.readouterr()
    assert main(["inbox", "--db", str(path)]) == 0
    assert "Aucune question en attente" in capsys.readouterr().out


def test_forget_removes_the_persons_log_and_hand_overs(kb, store) -> None:
    mine, theirs = Chat(Engine(kb, store), user=RAW_ID), Chat(Engine(kb, store), user="tg:2")
    for chat in (mine, theirs):
        chat.send("Qu’est-ce qu’un PTCE exactement ?")
        chat.choose("tm:h")
        chat.choose("tm:h1")
    mine.send("/oublier")
    mine.choose("forget!")
    assert store.db["question_log"].count == 1
    assert [r["user_id"] for r in store.db["handovers"].rows] == ["tg:2"]


def test_logging_can_be_switched_off(kb, store) -> None:
    services = TeamServices(QuestionLog(store.db, enabled=False), HandoverStore(store.db))
    chat = Chat(Engine(kb, store, features=standard_features(team=services)))
    chat.send("Qu’est-ce qu’un PTCE exactement ?")
    chat.choose(_button(chat, "👍").payload)
    assert store.db["question_log"].count == 0


def test_retention_purges_old_questions_at_start_and_daily(kb, store) -> None:
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    log = QuestionLog(store.db, retention_days=30, clock=lambda: now[0])
    services = TeamServices(log, HandoverStore(store.db))
    chat = Chat(Engine(kb, store, features=standard_features(team=services)))
    chat.send("Qu’est-ce qu’un PTCE exactement ?")
    now[0] += timedelta(days=20)
    chat.send("Comment financer un PTCE ?")
    now[0] += timedelta(days=15)  # the first question is now 35 days old
    chat.send("Quels sont les avantages d’une SCIC ?")
    assert [r["text"] for r in _log_rows(store)] == ["comment financer un ptce", "quels sont les avantages une scic"]
    now[0] += timedelta(days=40)
    assert QuestionLog(store.db, retention_days=30, clock=lambda: now[0]).purge() == 0  # purged already at start
    assert store.db["question_log"].count == 0


def test_help_explains_what_is_kept(chat) -> None:
    chat.send("/aide")
    text = chat.replies[0].text
    assert "Vos données" in text and "180 jours" in text and "/oublier" in text


def test_database_files_are_private_whatever_the_umask(kb, tmp_path) -> None:
    previous = os.umask(0o022)
    try:
        path = tmp_path / "private.db"
        store = ProgressStore.open(path)
        Chat(Engine(kb, store)).send("Qu’est-ce qu’un PTCE exactement ?")
        for file in (path, tmp_path / "private.db-wal", tmp_path / "private.db-shm"):
            assert file.exists(), file
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        store.close()
        os.chmod(path, 0o644)  # a database created by an older version is tightened
        ProgressStore.open(path).close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(previous)


# --------------------------------------------------------------------------- insights on a fixture


def _fixture_db(kb) -> ProgressStore:
    """Known counts: 3 users, 8 questions over two weeks, one orientation finished, one stopped."""
    store = ProgressStore(Database(memory=True))
    ensure_team_tables(store.db)
    rows = [
        ("2026-03-02T10:00:00+00:00", "a", "c est quoi un ptce", "ptce.definition", "ptce.socle_commun", "confident", 1),
        ("2026-03-02T10:05:00+00:00", "a", "meteo a brest", None, None, "declined", None),
        ("2026-03-03T09:00:00+00:00", "b", "meteo brest", None, None, "declined", None),
        ("2026-03-03T09:01:00+00:00", "b", "brest meteo", None, None, "declined", None),
        ("2026-03-10T09:00:00+00:00", "c", "financer un ptce", "financement.modele_economique", "ressources.fonctions_techniques", "suggest", -1),
        ("2026-03-10T09:02:00+00:00", "c", "c est quoi un ptce", "ptce.definition", None, "confident", 1),
        ("2026-03-11T09:00:00+00:00", "c", "c est quoi un ptce", "ptce.definition", None, "confident", None),
        ("2026-04-20T09:00:00+00:00", "c", "hors periode", None, None, "declined", None),
    ]
    for at, user, text, topic, runner, tier, feedback in rows:
        store.db.execute(
            "INSERT INTO question_log (at, user_hash, text, topic, runner_up, score, tier, feedback) VALUES (?,?,?,?,?,?,?,?)",
            [at, user, text, topic, runner, 0.5, tier, feedback],
        )
    flow = kb.flows["orientation"]
    questions = [(s, q.id) for s, step in enumerate(flow.steps) for q in step.questions]
    for user, count in (("u1", len(questions)), ("u2", 3)):
        for index, (_, qid) in enumerate(questions[:count]):
            skipped = 1 if index == 1 else 0
            store.db.execute(
                "INSERT INTO answers (user_id, question, value, skipped, answered_at) VALUES (?,?,?,?,?)",
                [user, qid, None if skipped else '"x"', skipped, "2026-03-05T10:00:00+00:00"],
            )
    store.db.conn.commit()
    return store


def test_insights_figures_on_a_fixture(kb) -> None:
    store = _fixture_db(kb)
    data = insights.compute(store.db, kb, since=insights.parse_day("2026-03-01"), until=insights.parse_day("2026-03-31", end=True))
    assert (data.questions, data.users) == (7, 3)
    assert [(w.questions, w.users) for w in data.weeks] == [(4, 2), (3, 1)]
    assert data.tiers == {"declined": 3, "confident": 3, "suggest": 1}
    assert data.feedback["ptce.definition"] == {"up": 2, "down": 0}
    assert data.feedback["financement.modele_economique"] == {"up": 0, "down": 1}
    # The three weather questions are one group (same words once normalised), first as the most frequent.
    first = data.inbox[0]
    assert first.count == 3 and first.topic is None
    assert {first.example, *first.variants} == {"meteo a brest", "meteo brest", "brest meteo"}
    second = data.inbox[1]
    assert (second.count, second.topic, second.runner_up, second.thumbs_down) == (
        1, "financement.modele_economique", "ressources.fonctions_techniques", 1,
    )
    orientation = next(f for f in data.funnels if f.flow == "orientation")
    assert (orientation.started, orientation.finished) == (2, 1)
    assert orientation.steps[0].reached == 2
    flow = kb.flows["orientation"]
    first_step_size = len(flow.steps[0].questions)
    stopped_at = 0 if first_step_size > 3 else next(
        i for i in range(len(flow.steps)) if sum(len(s.questions) for s in flow.steps[: i + 1]) > 3
    )
    assert orientation.steps[stopped_at].stopped_here == 1
    assert orientation.most_skipped[0][2] == 2
    assert json.loads(data.to_json())["questions"] == 7


def test_insights_command_outputs_and_suggestions(kb, tmp_path, capsys) -> None:
    path = tmp_path / "i.db"
    store = ProgressStore.open(path)
    chat = Chat(Engine(kb, store))
    chat.send("Qu’est-ce qu’un pôle territorial, concrètement ?")
    chat.choose(_button(chat, "👍").payload)
    chat.send("Comment monter une caisse de solidarité locale ?")
    store.close()
    assert main(["insights", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Questions : 2" in out and "Boîte de réception" in out
    assert main(["insights", "--db", str(path), "assign", "Comment monter une caisse de solidarité locale ?", "financement.modele_economique"]) == 0
    assert main(["insights", "--db", str(path), "assign", "x", "sujet.inconnu"]) == 1
    suggestions = tmp_path / "s.yaml"
    assert main(["insights", "--db", str(path), "--suggest", str(suggestions)]) == 0
    import yaml

    data = yaml.safe_load(suggestions.read_text())
    assert data["financement.modele_economique"] == ["comment monter une caisse de solidarite locale"]
    assert any("pole territorial" in q for q in data["ptce.definition"])
    capsys.readouterr()
    assert main(["insights", "--db", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tiers"]


def test_kb_check_flags_colliding_suggestions(tmp_path, capsys) -> None:
    suggestions = tmp_path / "s.yaml"
    suggestions.write_text("financement.modele_economique:\n  - c est quoi un ptce\n", encoding="utf-8")
    main(["kb", "check", "--suggestions", str(suggestions)])
    out = capsys.readouterr().out
    assert "1 collision(s)" in out and "ptce.definition" in out


def test_a_question_on_a_declared_gap_is_logged_as_not_covered(kb, store) -> None:
    from dataclasses import replace

    from knowledge.loader import NotCovered

    topic = kb.topics["financement.dispositifs"]
    gap = NotCovered(about="le montant des aides", triggers=("montant",))
    patched = replace(kb, topics={**kb.topics, topic.id: replace(topic, not_covered=(gap,))})
    chat = Chat(Engine(patched, store))
    chat.send("Quel montant pour les dispositifs de financement d’un PTCE ?")
    chat.send("Quels dispositifs pour financer un PTCE ?")
    assert [r["tier"] for r in _log_rows(store)] == ["not_covered", "confident"]


def test_glossary_questions_are_logged_too(chat, store) -> None:
    chat.send("C’est quoi une SCIC ?")
    assert "SCIC" in chat.replies[0].text
    rows = _log_rows(store)
    assert [(r["text"], r["topic"], r["tier"]) for r in rows] == [(normalise("C’est quoi une SCIC ?"), None, "confident")]


def test_help_says_nothing_is_logged_when_logging_is_off(kb, store) -> None:
    services = TeamServices(QuestionLog(store.db, enabled=False, retention_days=30), HandoverStore(store.db))
    chat = Chat(Engine(kb, store, features=standard_features(team=services)))
    chat.send("/aide")
    assert "ne sont pas enregistrées" in chat.replies[0].text and "30 jours" not in chat.replies[0].text


def test_insights_rejects_a_bad_date(tmp_path, capsys) -> None:
    assert main(["insights", "--db", str(tmp_path / "x.db"), "--since", "mars"]) == 1
    assert "AAAA-MM-JJ" in capsys.readouterr().err


def test_team_post_is_queued_once_and_its_outcome_recorded(store) -> None:
    """A hand-over post is a keyed outbox row: queued once however often the relay syncs, and the
    message id Telegram gave it is written to the hand-over even if the bot stopped right after the send."""
    import asyncio

    from bot.telegram.durable import SENT, TelegramQueue
    from bot.telegram.state import ChannelState
    from bot.telegram.team import TeamRelay
    from bot.telegram.timing import Timing

    handovers = HandoverStore(store.db)
    handovers.create("tg:42", "Comment trouver des bénévoles ?")
    queue = TelegramQueue.open(None)

    async def direct(function, *args):
        return function(*args)

    relay = TeamRelay(handovers, -100, queue=queue, kick=lambda chat: None, in_worker=direct,
                      state=ChannelState.create(queue, Timing()))

    async def scenario() -> None:
        await relay.sync()
        await relay.sync()  # a second nudge, or a restart before the send: still one row
        assert queue.count_outbox() == 1
        row = queue.next_row(-100)
        assert row is not None and "Question n° 1" in row.text.replace("\xa0", " ")
        queue.settle(row, SENT, 77)  # Telegram took it; the hand-over is not updated yet
        await relay.sync()
        await relay.sync()

    asyncio.run(scenario())
    assert handovers.unposted() == []
    assert handovers.by_team_message("-100", 77).ref == 1
    assert queue.count_outbox() == 0

"""Regards croisés as users live it: a coordinator, members, invitation codes, the group view."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from dialogue.engine import Engine
from dialogue.features.collective.store import CODE_PATTERN, CollectiveStore
from dialogue.storage.progress import ProgressStore
from dialogue.types import MAX_PAYLOAD_BYTES, ChannelSettings, Command
from tests.conversation import Chat as _Chat


class Chat(_Chat):
    """Reply texts with French non-breaking spaces read as plain spaces, for readable assertions."""

    @property
    def text(self) -> str:
        return super().text.replace("\u00a0", " ")

CODE_IN_TEXT = re.compile(r"(?:/rejoindre |\?start=)([a-z2-9-]+)")


def create_collective(engine: Engine, user: str = "coord", name: str = "PTCE Vallée de l’Oise") -> tuple[Chat, str]:
    coordinator = Chat(engine, user)
    coordinator.send("/collectif")
    coordinator.press("Créer un")  # « Créer un collectif », or « Créer un autre collectif » for a second one
    coordinator.send(name)
    coordinator.send("Marie, coordinatrice")
    assert f"« {name} » est créé" in coordinator.text
    return coordinator, CODE_IN_TEXT.search(coordinator.text).group(1)


def join(engine: Engine, user: str, code: str, *, sign: str | None = None) -> Chat:
    member = Chat(engine, user)
    member.send(f"/rejoindre {code}")
    assert "Marie, coordinatrice vous invite à rejoindre" in member.text
    if sign:
        member.press("Rejoindre en signant")
        member.send(sign)
    else:
        member.press("Rejoindre")
    assert "Bienvenue dans" in member.text
    return member


def answer_orientation(member: Chat, answers: dict[str, str | list[str]]) -> None:
    """Walk the whole orientation with buttons: the given answers, « Passer » elsewhere."""
    member.send("/orientation")
    for _ in range(60):
        question = next((b.payload for b in member.buttons if b.payload.startswith(("a:", "x:", "s:"))), None)
        if question is None:
            break
        question_id = question.split(":")[1]
        value = answers.get(question_id)
        if value is None:
            member.choose(f"s:{question_id}")
        elif isinstance(value, list):
            for option in value:
                member.choose(f"x:{question_id}:{option}")
            member.choose(f"ok:{question_id}")
        else:
            member.choose(f"a:{question_id}:{value}")
    assert "Votre synthèse" in member.text


FIVE = {
    "m1": {"typologie": "territoire", "volonte_commune": "oui", "solidite_collectif": "solide", "pression_financeurs": "non", "fonctions": ["coordination", "animation"]},
    "m2": {"typologie": "territoire", "volonte_commune": "oui", "solidite_collectif": "solide", "pression_financeurs": "oui", "fonctions": ["coordination"]},
    "m3": {"typologie": "territoire", "volonte_commune": "non", "solidite_collectif": "solide", "fonctions": ["coordination", "animation"]},
    "m4": {"typologie": "territoire", "volonte_commune": "partielle", "solidite_collectif": "fragile", "fonctions": ["coordination"]},
    "m5": {"typologie": "filiere", "volonte_commune": "non", "solidite_collectif": "en_construction", "fonctions": ["coordination", "animation", "ingenierie"]},
}


def section(text: str, title: str) -> str:
    """The block of the group view that starts with ``title`` (up to the next bold heading)."""
    start = text.index(title)
    following = re.search(r"\n\n\*\*", text[start + len(title):])
    return text[start : start + len(title) + following.start()] if following else text[start:]


def test_five_members_agreement_divergence_leave_and_forget(engine: Engine, store: ProgressStore):
    coordinator, code = create_collective(engine)
    members = {}
    for user, answers in FIVE.items():
        members[user] = join(engine, user, code, sign="Anne" if user == "m2" else None)
        answer_orientation(members[user], answers)

    coordinator.send("/collectif")
    view = coordinator.read_all()
    assert "Ont ouvert l’invitation : 5 · membres (coordination comprise) : 6 · parcours commencé : 5 · terminé : 5" in view
    assert "Coordination : Marie, coordinatrice.\n" in view and "Ont signé : Anne." in view
    divergent = section(view, "**Où vos avis divergent**")
    agreeing = section(view, "**Où vous êtes d’accord**")
    # volonté commune 2/5 (40 %) before solidité 3/5 (60 %): most divergent first
    assert divergent.index("Vos membres partagent-ils la volonté") < divergent.index("Comment jugez-vous la solidité")
    assert "accord 40 %" in divergent and "accord 60 %" in divergent
    assert "Oui, largement : 2 · Seulement certains : 1 · Non : 2" in divergent
    assert "Votre dynamique est plutôt un PTCE…** — accord 80 %" in agreeing
    # multiple choice: « Animation » ticked by 3 of 5 divides the group
    assert "Animation 3/5 ⚖️" in agreeing and "Coordination 5/5 ·" in agreeing
    # two answers only to « pression des financeurs »: no distribution anywhere
    assert "Des financeurs ou des collectivités" not in divergent + agreeing
    assert "18 question(s) ont moins de 3 réponses" in view  # skipped by all, or only 2 answers
    debate = view.split("**Points à mettre en débat**")[1].split("**Synthèse du groupe**")[0]
    assert "Une volonté partagée de formaliser** — chap. 07 — Gouvernance et formalisation, p. 17" in debate
    assert "?" in debate
    group = view.split("**Synthèse du groupe**")[1]
    formalisation = group.split("**Gouvernance et formalisation**")[1].split("\n\n")[0]
    assert "Piste qui ressort des réponses majoritaires" in formalisation
    assert "⚖️ Piste fragile : vos avis divergent sur « Vos membres partagent-ils la volonté" in formalisation

    # a member may not see the group view until the coordinator allows it
    members["m1"].send("/collectif")
    assert "La vue de groupe n’est pas ouverte aux membres" in members["m1"].text
    assert "accord" not in members["m1"].text
    cid = next(b.payload for b in members["m1"].buttons if b.payload.startswith("k:leave:")).split(":")[2]
    members["m1"].choose(f"k:see:{cid}")  # a forged coordinator button changes nothing
    assert "Ce choix n’est plus valable" in members["m1"].text
    coordinator.press("Montrer la vue aux membres")
    members["m1"].send("/collectif")
    member_view = members["m1"].read_all()
    assert "Où vos avis divergent" in member_view
    # nobody's answers are attributed: no user id, no signed name next to an answer
    for user in FIVE:
        assert f"{user}" not in member_view.replace("m1", "")
    assert "Anne" not in member_view.split("Ont signé")[1].split("\n", 1)[1]
    assert "Nouveau code" not in members["m1"].labels

    # m4 leaves: the counts do not move at once (the coordinator would read m4's answers from the change)
    members["m4"].send("/collectif")
    members["m4"].press("Quitter le collectif")
    members["m4"].press("Oui, quitter")
    assert "Vous avez quitté" in members["m4"].text
    coordinator.send("/collectif")
    view = coordinator.read_all()
    assert "membres (coordination comprise) : 5 · parcours commencé : 4" in view
    assert "Votre dynamique est plutôt un PTCE…** — accord 80 %" in view

    # m5 forgets everything: erased from the members at once, still no change of the counts (2 changes)
    members["m5"].send("/oublier")
    members["m5"].press("Oui, tout effacer")
    assert not list(store.db.query("SELECT * FROM collective_members WHERE user_id = 'm5'"))
    coordinator.send("/collectif")
    view = coordinator.read_all()
    assert "Ont ouvert l’invitation : 4 · membres (coordination comprise) : 4 · parcours commencé : 3 · terminé : 3" in view
    assert "Votre dynamique est plutôt un PTCE…** — accord 80 %" in view
    # a third change (m6 joins and answers): a new batch is published, without m4 and m5
    answer_orientation(join(engine, "m6", code), {"typologie": "territoire", "volonte_commune": "oui", "fonctions": ["coordination"]})
    coordinator.send("/collectif")
    view = coordinator.read_all()
    assert "Votre dynamique est plutôt un PTCE…** — accord 100 %" in view
    assert "Vos membres partagent-ils la volonté de formaliser juridiquement la démarche ?** — accord 75 %" in view
    # fonctions: « Ingénierie » was m5's alone
    assert "Ingénierie de projets 0/4" in view


def test_member_sees_only_own_answers_in_personal_synthesis(engine: Engine):
    _, code = create_collective(engine)
    one = join(engine, "one", code)
    two = join(engine, "two", code)
    answer_orientation(one, {"typologie": "filiere"})
    answer_orientation(two, {"typologie": "territoire"})
    one.send("/synthese")
    assert "PTCE « filière »" in one.text and "PTCE de territoire**" not in one.text


def test_wrong_revoked_and_renewed_codes(engine: Engine):
    coordinator, code = create_collective(engine)
    stranger = Chat(engine, "stranger")
    stranger.send("/rejoindre zzzzz-zzzzz-zzzzz-zzzzz")
    assert "Ce code d’invitation n’existe pas" in stranger.text
    stranger.send("/rejoindre")
    stranger.send("pas un code")
    assert "n’existe pas" in stranger.text

    coordinator.send("/collectif")
    coordinator.press("Désactiver le code")
    assert "Le code est désactivé" in coordinator.text
    stranger.send(f"/rejoindre {code}")
    assert "n’est plus valable" in stranger.text and "Rejoindre" not in stranger.labels

    coordinator.send("/collectif")
    coordinator.press("Nouveau code")
    new = CODE_IN_TEXT.search(coordinator.text).group(1)
    assert new != code and CODE_PATTERN.match(new)
    stranger.send(f"/rejoindre {new.upper().replace('-', ' ')}")  # typed loosely: still found
    assert "vous invite à rejoindre" in stranger.text
    stranger.press("Refuser")
    assert "vous n’avez pas rejoint" in stranger.text
    stranger.send(f"/start {new}")  # the Telegram deep link path
    stranger.press("Rejoindre")
    assert "Bienvenue" in stranger.text
    stranger.send(f"/start {new}")
    assert "Vous faites déjà partie" in stranger.text


def test_joining_without_opening_an_invitation_is_refused(engine: Engine):
    coordinator, _ = create_collective(engine)
    cid = next(b.payload for b in coordinator.buttons if b.payload.startswith("k:o:")).split(":")[2]
    intruder = Chat(engine, "intruder")
    intruder.choose(f"k:j:{cid}")
    assert "Ce choix n’est plus valable" in intruder.text
    intruder.choose(f"k:o:{cid}")
    assert "Ce choix n’est plus valable" in intruder.text


def test_code_reused_by_a_member_of_another_collective(engine: Engine, store: ProgressStore):
    _, code_a = create_collective(engine, "coord_a", "Collectif A")
    _, code_b = create_collective(engine, "coord_b", "Collectif B")
    member = join(engine, "both", code_a)
    answer_orientation(member, {"typologie": "filiere"})
    member.send(f"/rejoindre {code_b}")
    member.press("Rejoindre")
    assert "Votre orientation compte aujourd’hui pour « Collectif A »" in member.text
    assert member.labels[:2] == ["« Collectif B »", "Garder « Collectif A »"]
    member.press("« Collectif B »")
    assert "compte désormais pour « Collectif B », et plus pour « Collectif A »" in member.text
    collectives = CollectiveStore(store.db)
    counted = collectives.counting_for("both")
    assert counted.name == "Collectif B"
    member.send("/collectif")
    assert member.labels[:2] == ["« Collectif A »", "« Collectif B »"]


def test_close_freezes_the_view_and_delete_removes_everything(engine: Engine, store: ProgressStore):
    coordinator, code = create_collective(engine)
    chats = [join(engine, f"p{i}", code) for i in range(3)]
    for chat in chats:
        answer_orientation(chat, {"typologie": "territoire"})
    coordinator.send("/collectif")
    coordinator.press("Clore le collectif")
    coordinator.press("Oui, clore")
    assert "est clos" in coordinator.text
    answer_changed = chats[0]
    answer_changed.send("/recommencer")
    answer_changed.press("Oui, recommencer")
    answer_changed.choose("a:typologie:filiere")
    coordinator.send("/collectif")
    assert "Collectif clos" in coordinator.text
    assert "accord 100 %" in coordinator.text  # the change after closing does not count
    late = Chat(engine, "late")
    late.send(f"/rejoindre {code}")
    assert "n’est plus valable" in late.text
    frozen = store.db["collective_answers"].count
    chats[2].send("/oublier")
    chats[2].press("Oui, tout effacer")  # forgetting also removes the frozen copy
    assert store.db["collective_answers"].count < frozen
    assert not list(store.db.query("SELECT 1 FROM collective_answers WHERE user_id = 'p2'"))
    coordinator.send("/collectif")
    assert "Pas encore assez de réponses" in coordinator.text  # 2 answers left: below the threshold
    coordinator.press("Supprimer le collectif")
    coordinator.press("Oui, supprimer")
    assert "est supprimé" in coordinator.text
    for table in ("collectives", "collective_members", "collective_codes", "collective_answers"):
        assert store.db[table].count == 0, table
    chats[1].send("/collectif")
    assert "Créer un collectif" in chats[1].labels


def test_coordinator_forgetting_deletes_their_collective(engine: Engine, store: ProgressStore):
    coordinator, code = create_collective(engine)
    join(engine, "member", code)
    coordinator.send("/oublier")
    coordinator.press("Oui, tout effacer")
    assert store.db["collectives"].count == 0 and store.db["collective_members"].count == 0


def test_telegram_invitation_link_and_trigger_phrase(engine: Engine):
    engine.use_channel(ChannelSettings(bot_username="conseiller_ptce_bot"))
    chat = Chat(engine, "coord")
    chat.send("Je voudrais faire l'orientation avec mon collectif")
    assert "Regards croisés" in chat.text and "Créer un collectif" in chat.labels
    chat.press("Créer un collectif")
    chat.send("PTCE du Compiégnois")
    chat.send("Paul")
    link = re.search(r"https://t\.me/conseiller_ptce_bot\?start=(\S+)", chat.text)
    assert link, chat.text
    start = link.group(1)
    assert len(start) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", start)
    assert "/rejoindre" not in chat.text


def test_names_are_checked_and_cancel_keeps_nothing(engine: Engine, store: ProgressStore):
    chat = Chat(engine, "coord")
    chat.send("/collectif")
    chat.press("Créer un collectif")
    chat.send("x" * 61)
    assert "60 caractères au plus" in chat.text
    chat.press("Annuler")
    assert "annulé" in chat.text
    chat.send("Bonjour")
    assert store.db["collectives"].count == 0
    chat.send("/collectif")
    chat.press("Créer un collectif")
    chat.send("/menu")  # any command drops the pending question
    chat.send("PTCE")
    assert store.db["collectives"].count == 0
    chat.send("/collectif")
    chat.press("Créer un collectif")
    chat.send("Faut-il créer une association ?")  # a question is answered, not taken as a name
    assert "Source" in chat.text and store.db["collectives"].count == 0


def test_group_chat_links_and_posts_invitation(engine: Engine):
    engine.use_channel(ChannelSettings(bot_username="conseiller_ptce_bot"))
    nobody = engine.handle("someone", Command("collectif", "", group_chat="tg-group:-100"))
    assert "n’est lié à aucun collectif" in nobody[0].text
    _, code = create_collective(engine, "coord", "Collectif A")
    linked = engine.handle("coord", Command("collectif", "", group_chat="tg-group:-100"))
    assert "Ce groupe est maintenant lié au collectif «\u00a0Collectif A\u00a0»" in linked[0].text
    assert f"https://t.me/conseiller_ptce_bot?start={code}" in linked[0].text
    again = engine.handle("someone", Command("collectif", "", group_chat="tg-group:-100"))
    assert f"?start={code}" in again[0].text and "message privé" in again[0].text
    typed_code = engine.handle("someone", Command("rejoindre", code, group_chat="tg-group:-100"))
    assert "écrivez-moi en message privé" in typed_code[0].text and code not in typed_code[0].text
    assert typed_code[0].buttons == ()


def test_every_collective_payload_fits_telegram(engine: Engine):
    coordinator, code = create_collective(engine)
    member = join(engine, "member", code)
    coordinator.send("/collectif")
    payloads = [b.payload for chat in (coordinator, member) for reply in chat.history for b in reply.all_buttons()]
    assert payloads and max(len(p.encode()) for p in payloads) <= MAX_PAYLOAD_BYTES


def test_migration_adds_tables_to_an_existing_database(tmp_path, kb):
    path = tmp_path / "old.db"
    db = Database(path)
    from dialogue.storage.schema import migrations

    migrations.apply(db, stop_before="m003_turn_markers")
    assert not db["collectives"].exists()
    db.close()
    store = ProgressStore.open(path)
    assert not store.db["collectives"].exists()  # the core store knows nothing of the feature
    Engine(kb, store)
    assert store.db["collectives"].exists() and store.db["collective_members"].exists()
    names = [row["name"] for row in store.db.query("SELECT name FROM _sqlite_migrations")]
    assert "m_collectives_001" in names
    store.close()


@pytest.mark.parametrize("typed", ["/collectif", "faire l’orientation avec notre collectif"])
def test_entry_points_reach_the_same_page(engine: Engine, typed: str):
    chat = Chat(engine, "someone")
    chat.send(typed)
    assert chat.labels == ["Créer un collectif", "J’ai un code d’invitation", "Menu"]


# --------------------------------------------------------------------------- any order of events

ACTIONS = ("new", "code", "cancel", "o", "count", "leave", "leave!", "j", "js", "no", "inv", "renew", "revoke", "see", "hide", "close", "close!", "del", "del!")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["coord", "a", "b"]),
            st.one_of(
                st.sampled_from(["/collectif", "/rejoindre", "/rejoindre CODE", "/start CODE", "/oublier", "/menu", "PTCE", "Nom", "?"]),
                st.sampled_from(ACTIONS).map(lambda a: f"k:{a}:CID"),
                st.text(max_size=70),
            ),
        ),
        max_size=25,
    )
)
def test_any_sequence_of_collective_events_gets_an_answer(kb, steps):
    engine = Engine(kb, ProgressStore(Database(memory=True)))
    coordinator, code = create_collective(engine)
    cid = next(b.payload for b in coordinator.buttons if b.payload.startswith("k:o:")).split(":")[2]
    chats = {"coord": coordinator, "a": Chat(engine, "a"), "b": Chat(engine, "b")}
    for user, step in steps:
        chat = chats[user]
        step = step.replace("CODE", code).replace("CID", cid)
        replies = chat.choose(step) if step.startswith("k:") else chat.send(step)
        assert replies and all(reply.text.strip() for reply in replies)
        assert all(len(b.payload.encode()) <= MAX_PAYLOAD_BYTES for b in chat.buttons)
        if step.startswith("/oublier"):
            chat.press("Oui, tout effacer")


def test_coordinator_of_two_collectives_chooses_where_their_orientation_counts(engine: Engine, store: ProgressStore):
    first, _ = create_collective(engine, "coord", "Collectif A")
    assert CollectiveStore(store.db).counting_for("coord").name == "Collectif A"
    second, _ = create_collective(engine, "coord", "Collectif B")
    second.send("/collectif")
    second.press("« Collectif B »")
    second.press("Faire compter mon orientation ici")
    assert "compte désormais pour « Collectif B », et plus pour « Collectif A »" in second.text
    assert CollectiveStore(store.db).counting_for("coord").name == "Collectif B"


def test_a_command_no_feature_takes_in_a_group_is_answered_for_the_sender(engine: Engine):
    """/menu typed in a group chat: no feature answers for the group, so the sender gets the menu as in private."""
    replies = engine.handle("someone", Command("menu", "", group_chat="tg-group:-100"))
    assert "**Menu**" in replies[0].text
    assert any(button.payload == "f:orientation" for reply in replies for button in reply.all_buttons())
    assert engine.store.load("someone") is not None  # a turn of the sender's own conversation

"""No message over Telegram's 4,096 characters, anywhere; long content paged with « Suite »."""

from __future__ import annotations

import random

import pytest

from dialogue.pages import MAX_REPLY, fit, split, utf16_len
from dialogue.types import Button, Reply
from tests.conversation import Chat
from tests.test_collective import FIVE, answer_orientation, create_collective, join


def _longest(replies) -> int:
    return max((utf16_len(r.text) for r in replies), default=0)


def _random_flow(chat: Chat, rng: random.Random) -> None:
    """Answer whatever question is on screen at random (ticks, skips, answers) until the result."""
    for _ in range(80):
        payloads = [b.payload for b in chat.buttons]
        answers = [x for x in payloads if x.startswith("a:")]
        ticks = [x for x in payloads if x.startswith("x:")]
        validate = next((x for x in payloads if x.startswith("ok:")), None)
        skip = next((x for x in payloads if x.startswith("s:")), None)
        if validate:
            for tick in rng.sample(ticks, rng.randint(0, len(ticks))):
                chat.choose(tick)
            chat.choose(validate if rng.random() > 0.1 else skip)
        elif answers:
            chat.choose(rng.choice(answers) if rng.random() > 0.1 else skip)
        else:
            return


@pytest.mark.parametrize("seed", range(12))
def test_every_reply_of_random_profiles_fits_one_message(engine, seed):
    rng = random.Random(seed)
    chat = Chat(engine, f"profile-{seed}")
    seen = []
    for flow in rng.sample(["/orientation", "/formes"], 2):
        chat.send(flow)
        _random_flow(chat, rng)
        seen.extend(chat.history)
    for command in ("/synthese", "/progression", "/modifier", "/aide", "/source", "/glossaire", "/formes"):
        chat.send(command)
    chat.send("/synthese")
    chat.read_all("Voir le détail")
    chat.send("/formes")
    chat.read_all()
    assert _longest(chat.history) <= MAX_REPLY
    # the pages themselves are within the page size: the engine's last resort (fit) is not what saves them
    assert all(len(reply.text) <= 3600 for reply in chat.history)


def test_the_detailed_synthesis_is_paged_one_page_per_turn(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    _random_flow(chat, random.Random(3))
    chat.send("/synthese")
    chat.press("Voir le détail")
    assert len(chat.replies) == 1 and "(Page 1/" in chat.text
    total = int(chat.text.rsplit("(Page 1/", 1)[1].split(")")[0])
    assert f"Suite (2/{total})" in chat.labels and "Menu" in chat.labels
    pages = [chat.text]
    for number in range(2, total + 1):
        chat.press("Suite")
        assert f"(Page {number}/{total})" in chat.text and chat.text not in pages
        pages.append(chat.text)
    assert not any(label.startswith("Suite") for label in chat.labels)
    assert "Prochaines étapes" in pages[-1]


def test_the_legal_guide_is_paged_and_not_printed_again_on_keep(engine):
    chat = Chat(engine)
    chat.send("/formes")
    _random_flow(chat, random.Random(1))
    assert "Guide des formes juridiques" in chat.text
    assert len(chat.replies) == 2  # the outro, then one page
    first = chat.replies[-1].text
    chat.send("/recommencer")
    chat.press("Non, garder")
    assert "sont gardées" in chat.text and len(chat.replies) == 1 and "Piste qui ressort" not in chat.text
    assert {"Voir le résultat", "Modifier une réponse", "Menu"} <= set(chat.labels)
    chat.press("Voir le résultat")
    assert chat.replies[-1].text == first


def test_keep_in_an_unfinished_flow_goes_back_to_the_question(chat):
    chat.send("/orientation")
    chat.send("1")
    chat.send("/recommencer")
    chat.send("non")
    assert "Étape 2/" in chat.text and chat.engine.store.load("tester").answers["typologie"] == "territoire"


def test_the_group_view_is_paged(engine):
    coordinator, code = create_collective(engine)
    for user, answers in FIVE.items():
        answer_orientation(join(engine, user, code), answers)
    coordinator.send("/collectif")
    assert len(coordinator.replies) == 1 and "(Page 1/" in coordinator.text
    assert "Inviter" in coordinator.labels and "Recevoir la vue de groupe (PDF)" in coordinator.labels
    whole = coordinator.read_all()
    assert "Synthèse du groupe" in whole and all(utf16_len(r.text) <= MAX_REPLY for r in coordinator.history)


def test_a_forged_page_number_is_stale(engine, chat):
    chat.send("/orientation")
    chat.choose("synd:abc")
    assert "plus valable" in chat.text
    chat.choose("res:nowhere:2")
    assert "plus valable" in chat.text


def test_fit_cuts_an_overlong_reply_and_keeps_its_buttons_last():
    text = "\n\n".join(f"Paragraphe {i} " + "mot " * 300 for i in range(10))
    menu = ((Button("Menu", "m"),),)
    pieces = fit([Reply(text, menu)])
    assert len(pieces) > 1 and all(utf16_len(piece.text) <= MAX_REPLY for piece in pieces)
    assert pieces[-1].buttons == menu and all(not piece.buttons for piece in pieces[:-1])
    assert " ".join(" ".join(p.text.split()) for p in pieces) == " ".join(text.split())
    emoji = "👉" * 3000  # two UTF-16 units each
    assert all(utf16_len(part) <= MAX_REPLY for part in split(emoji))


def test_engine_never_returns_a_reply_over_the_limit(engine, monkeypatch):
    chat = Chat(engine)
    monkeypatch.setattr(engine.screens, "source", lambda: Reply("x " * 5000, ((Button("Menu", "m"),),)))
    chat.send("/source")
    assert len(chat.replies) == 3 and _longest(chat.replies) <= MAX_REPLY and chat.labels == ["Menu"]


def test_every_page_topic_glossary_and_fixed_screen_fits_without_being_cut(engine, kb):
    """The content itself fits one message: the engine's cut (fit) is a guarantee, not the layout."""
    from dialogue import payloads as p
    from dialogue.glossary import initial, term_key

    chat = Chat(engine)
    payloads = [p.MENU, p.HELP, p.SOURCE, p.GLOSSARY]
    for topic in kb.topics.values():
        payloads += [p.topic(topic.id), p.more(topic.id)] + ([p.vigilance(topic.id)] if topic.vigilance else [])
    for theme in kb.glossary_themes:
        payloads.append(p.glossary("t", theme.id))
    for term in kb.glossary:
        payloads += [p.glossary("l", initial(term.term)), p.glossary("e", term_key(term.term))]
    for question in kb.document.intro_questions:
        payloads.append(p.intro(question.id))
    for payload in payloads:
        replies = chat.choose(payload)
        assert all(utf16_len(reply.text) <= 3600 for reply in replies), payload

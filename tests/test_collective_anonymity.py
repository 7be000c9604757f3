"""The group view against differencing (issue #21): a coordinator who looks before and after one
member answers, or who joins with a second account, learns nothing about that member's answer."""

from __future__ import annotations

from dialogue.engine import Engine
from dialogue.features.collective.feature import CollectiveFeature
from dialogue.features.collective.store import CollectiveStore
from dialogue.storage.progress import ProgressStore
from tests.test_collective import Chat, answer_orientation, create_collective, join

TYPOLOGY = "Votre dynamique est plutôt un PTCE"


def counts_part(view: str) -> str:
    """The group view without its participation line (who started the orientation is not an answer)."""
    return "\n".join(line for line in view.splitlines() if not line.startswith("Ont ouvert l’invitation"))


def typology_line(view: str) -> str:
    return next((line for line in view.splitlines() if TYPOLOGY in line), "")


def test_looking_before_and_after_one_member_answers_shows_no_difference(engine: Engine, store: ProgressStore) -> None:
    coordinator, code = create_collective(engine)
    answer_orientation(coordinator, {"typologie": "territoire"})
    for user in ("a", "b", "d"):
        answer_orientation(join(engine, user, code), {"typologie": "territoire"})
    coordinator.send("/collectif")
    before = coordinator.text
    assert "accord 100 %" in typology_line(before)  # 3 answers besides the coordinator's: counts are shown

    target = join(engine, "target", code)
    answer_orientation(target, {"typologie": "filiere"})  # the one answer the coordinator wants to read
    coordinator.send("/collectif")
    after = coordinator.text
    assert counts_part(after) == counts_part(before)
    assert "parcours commencé : 4" in before.replace("\u00a0", " ") and "parcours commencé : 5" in after.replace("\u00a0", " ")
    # The PDF says no more than the chat.
    profile = engine.feature(CollectiveFeature).flow.profile(CollectiveStore(store.db).coordinated_by("coord")[0], "coord")
    spread = profile.spread("typologie")
    assert spread is not None and spread.answered == 4 and {o.id: o.count for o in spread.options}.get("filiere") == 0

    # The target changes their mind, still alone: nothing moves.
    target.send("/recommencer")
    target.press("Oui, recommencer")
    target.choose("a:typologie:indefini")
    coordinator.send("/collectif")
    assert counts_part(coordinator.text) == counts_part(before)

    # Two more members answer: a batch of three changes, published together.
    for user in ("e", "f"):
        answer_orientation(join(engine, user, code), {"typologie": "territoire"})
    coordinator.send("/collectif")
    assert counts_part(coordinator.text) != counts_part(before)
    assert "accord 86 %" in typology_line(coordinator.text)  # 6 of 7 « territoire »


def test_a_second_account_does_not_reveal_a_third_answer(engine: Engine) -> None:
    coordinator, code = create_collective(engine)
    answer_orientation(coordinator, {"typologie": "territoire"})
    second = join(engine, "coord-second-account", code)
    answer_orientation(second, {"typologie": "territoire"})
    target = join(engine, "target", code)
    answer_orientation(target, {"typologie": "filiere"})
    # Three answers, two of them the coordinator's own accounts: no distribution for either account.
    coordinator.send("/collectif")
    assert typology_line(coordinator.text) == ""
    assert "Pas encore assez de réponses" in coordinator.text
    coordinator.press("Montrer la vue aux membres")
    second.send("/collectif")
    assert typology_line(second.text) == ""

    # Later, with enough other members, the view is published; then the second account and the target
    # change their answers: two changes, not a batch, so the view does not move.
    for user in ("a", "b", "d"):
        answer_orientation(join(engine, user, code), {"typologie": "territoire"})
    coordinator.send("/collectif")
    published = coordinator.text
    assert typology_line(published)
    for chat, value in ((second, "filiere"), (target, "indefini")):
        chat.send("/recommencer")
        chat.press("Oui, recommencer")
        chat.choose(f"a:typologie:{value}")
    coordinator.send("/collectif")
    assert counts_part(coordinator.text) == counts_part(published)
    second.send("/collectif")
    assert typology_line(second.text) == typology_line(published)

    # The second account leaving and coming back is one member moving, not a batch either.
    second.send("/collectif")
    second.press("Quitter le collectif")
    second.press("Oui, quitter")
    coordinator.send("/collectif")
    assert counts_part(coordinator.text) == counts_part(published)


def test_one_membership_per_account(engine: Engine, store: ProgressStore) -> None:
    """The same Telegram account opening the invitation twice stays one member, counted once."""
    _, code = create_collective(engine)
    member = join(engine, "tg:555", code)
    member.send(f"/start {code}")
    assert "Vous faites déjà partie" in member.text
    rows = list(store.db.query("SELECT COUNT(*) AS n FROM collective_members WHERE user_id = 'tg:555'"))
    assert rows[0]["n"] == 1
    assert Chat  # the helper's class, re-exported for readers of this file

"""Multi-turn dialogue scripts (YAML) played against the engine, for tests and ``ptce-bot eval --dialogues``.

A file holds a ``category`` and ``scripts``; each script is a list of turns. A turn sends
``say`` (free text), ``cmd`` (« /name arg ») or ``press`` (a visible button's label), then
checks what the user would notice: ``topic`` (page shown), ``part`` (short, more, vig),
``hedge``, ``suggest``, ``abstain``, ``not_covered``, ``step`` (text of the step header),
``answer`` (stored answers), ``contains`` / ``absent`` (reply text), ``buttons`` (labels shown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dialogue.types import Choose, Command, Event, Reply, Say
from knowledge.text import normalise

_KNOWN = {"say", "cmd", "press", "topic", "part", "hedge", "suggest", "abstain", "not_covered", "step", "answer",
          "contains", "absent", "buttons", "note"}
#: Script-level keys: ``owner`` names the helper/area whose work a known failure waits for.
SCRIPT_KEYS = {"name", "turns", "owner"}


@dataclass
class ScriptResult:
    category: str
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def load_scripts(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    scripts = []
    for path in sorted(Path(directory).glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        category = raw.get("category", path.stem)
        for script in raw["scripts"]:
            scripts.append((category, script))
    return scripts


def _text(replies: list[Reply]) -> str:
    return "\n\n".join(r.text for r in replies).replace("\u00a0", " ")


def _labels(replies: list[Reply]) -> list[str]:
    return [b.label.replace("\u00a0", " ") for r in replies for b in r.all_buttons()]


def play(engine, category: str, script: dict[str, Any], user: str) -> ScriptResult:
    result = ScriptResult(category, script["name"])
    replies: list[Reply] = []
    for index, turn in enumerate(script["turns"], start=1):
        unknown = set(turn) - _KNOWN
        if unknown:
            result.failures.append(f"tour {index} : clés inconnues {sorted(unknown)}")
            break
        if "cmd" in turn:
            name, _, argument = str(turn["cmd"]).lstrip("/").partition(" ")
            event: Event = Command(name, argument)
            label = turn["cmd"]
        elif "press" in turn:
            wanted = normalise(str(turn["press"]))
            button = next((b for r in replies for b in r.all_buttons() if wanted in normalise(b.label)), None)
            if button is None:
                result.failures.append(f"tour {index} : pas de bouton « {turn['press']} » dans {_labels(replies)}")
                break
            event = Choose(button.payload)
            label = turn["press"]
        else:
            event, label = Say(str(turn.get("say", ""))), turn.get("say", "")
        replies = engine.handle(user, event)
        text = _text(replies)
        record = engine.store.load(user)
        current_topic = record.context.topic if record else None
        kb = engine.kb

        def fail(why: str, index: int = index, label: str = label, text: str = text) -> None:
            result.failures.append(f"tour {index} « {label} » : {why} — reçu : {text[:160]!r}")

        if "topic" in turn:
            topic = kb.topics[turn["topic"]]
            if normalise(topic.title) not in normalise(text):
                fail(f"sujet attendu {turn['topic']}")
        if "part" in turn:
            topic_id = turn.get("topic") or current_topic
            topic = kb.topics[topic_id] if topic_id in kb.topics else None
            markers = {"more": "en savoir plus", "vig": "Points de vigilance"}
            if topic is None or (turn["part"] in markers and markers[turn["part"]] not in text):
                fail(f"partie attendue {turn['part']}")
        if turn.get("hedge") and "Je pense que" not in text and "Si je comprends bien" not in text and "le plus proche" not in text:
            fail("réponse prudente attendue")
        if turn.get("suggest") and "Vouliez-vous dire" not in text:
            fail("« Vouliez-vous dire » attendu")
        if "abstain" in turn:
            abstained = any(s in text for s in ("pas trouvé", "sort du document", "rien là-dessus", "n’aborde pas",
                                                "n’arrive pas", "Toujours rien", "pas reconnu"))
            if bool(turn["abstain"]) != abstained:
                fail("refus attendu" if turn["abstain"] else "réponse attendue, pas un refus")
        if turn.get("not_covered") and "Le document ne précise pas" not in text:
            fail("« Le document ne précise pas » attendu")
        if "step" in turn and str(turn["step"]) not in text:
            fail(f"étape « {turn['step']} » attendue")
        for question, value in (turn.get("answer") or {}).items():
            stored = record.answers.get(question) if record else None
            if stored != value:
                fail(f"réponse enregistrée {question}={stored!r}, attendu {value!r}")
        for piece in ([turn["contains"]] if isinstance(turn.get("contains"), str) else turn.get("contains") or []):
            if normalise(piece) not in normalise(text):
                fail(f"texte « {piece} » attendu")
        for piece in ([turn["absent"]] if isinstance(turn.get("absent"), str) else turn.get("absent") or []):
            if normalise(piece) in normalise(text):
                fail(f"texte « {piece} » inattendu")
        for wanted in turn.get("buttons") or []:
            if not any(normalise(wanted) in normalise(b) for b in _labels(replies)):
                fail(f"bouton « {wanted} » attendu")
    return result


def run_corpus(engine, directory: Path) -> list[ScriptResult]:
    results = []
    for number, (category, script) in enumerate(load_scripts(directory)):
        results.append(play(engine, category, script, f"dialogue-{number}"))
    return results


def pass_rates(results: list[ScriptResult]) -> dict[str, tuple[int, int]]:
    rates: dict[str, tuple[int, int]] = {}
    for result in results:
        passed, total = rates.get(result.category, (0, 0))
        rates[result.category] = (passed + result.passed, total + 1)
    return rates

"""The glossary: browsed by theme or letter, or reached by a question (« c'est quoi un EPCI ? »)."""

from __future__ import annotations

from dialogue import payloads as p
from dialogue.buttons import MENU_BUTTON, label
from dialogue.compiled import CompiledKnowledge
from dialogue.turn import Turn
from dialogue.types import Button, Reply
from dialogue.understanding.reading import Reader
from knowledge.loader import GlossaryTerm, initial, term_key


class Glossary:
    def __init__(self, knowledge: CompiledKnowledge) -> None:
        self.knowledge = knowledge
        self.kb = knowledge.kb

    def term(self, plain: str) -> GlossaryTerm | None:
        """The term a normalised question names, alone or after « c'est quoi », « que veut dire »…"""
        return Reader.for_knowledge(self.kb).term(plain)

    def browse(self, turn: Turn, payload: p.Payload) -> list[Reply]:
        """``g``, ``g:t:THEME``, ``g:l:LETTER`` or ``g:e:TERM``."""
        turn.conversation.read_glossary()
        kind, value = payload.arg(0), p.SEPARATOR.join(payload.args[1:])
        themes = {theme.id: theme for theme in self.kb.glossary_themes}
        if kind == "t" and value in themes:
            terms = [term for term in self.kb.glossary if term.theme == value]
            return [self.listing(f"**Glossaire — {themes[value].label}**", terms)]
        if kind == "l" and len(value) == 1:
            terms = [term for term in self.kb.glossary if initial(term.term) == value]
            if terms:
                return [self.listing(f"**Glossaire — lettre {value}**", terms)]
        if kind == "e":
            found = next((t for t in self.kb.glossary if term_key(t.term) == value), None)
            if found is not None:
                return [self.card(found)]
        rows: list[tuple[Button, ...]] = []
        for theme in self.kb.glossary_themes:
            count = sum(term.theme == theme.id for term in self.kb.glossary)
            rows.append((Button(f"{theme.label} ({count})", p.glossary("t", theme.id)),))
        letters = sorted({initial(term.term) for term in self.kb.glossary})
        rows.extend(tuple(Button(letter, p.glossary("l", letter)) for letter in letters[i : i + 7]) for i in range(0, len(letters), 7))
        rows.append((MENU_BUTTON,))
        text = (
            f"**Glossaire** — {len(self.kb.glossary)} termes du document, rangés par thème ou par lettre. "
            "Vous pouvez aussi écrire « c’est quoi un EPCI ? »."
        )
        return [Reply(text, tuple(rows))]

    def listing(self, heading: str, terms: list[GlossaryTerm]) -> Reply:
        """One theme or one letter: the terms as buttons, two per row."""
        buttons = [Button(label(term.term, 32), p.glossary("e", term_key(term.term))) for term in terms]
        rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
        rows.append((Button("Glossaire", p.GLOSSARY), MENU_BUTTON))
        names = ", ".join(term.term for term in terms)
        return Reply(f"{heading}\n\n{names}.\n\nChoisissez un terme pour lire sa définition.", tuple(rows))

    def card(self, term: GlossaryTerm) -> Reply:
        """One term: what the document says, then any general definition, marked as such."""
        text = f"**{term.term}** : {term.definition}"
        if term.general:
            text += f"\n\nDéfinition générale, hors document : {term.general}"
        if term.chapter:
            cited = self.kb.document.cite(term.chapter, term.page, front=term.front_matter, back=term.back_cover)
            text += f"\n\n(Glossaire — {cited})"
        rows: list[tuple[Button, ...]] = []
        if term.topic:
            rows.append((Button(label("→ " + self.kb.topics[term.topic].title), p.topic(term.topic)),))
        theme = next((t for t in self.kb.glossary_themes if t.id == term.theme), None)
        back = [Button(label("← " + theme.label), p.glossary("t", theme.id))] if theme else []
        rows.append((*back, Button("Glossaire", p.GLOSSARY)))
        rows.append((MENU_BUTTON,))
        return Reply(text, tuple(rows))


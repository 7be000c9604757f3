"""Script-like helpers for conversation tests: send, press, then assert on replies."""

from __future__ import annotations

from dialogue.engine import Engine
from dialogue.types import Button, Choose, Command, Reply, Say


class Chat:
    """One user talking to an engine, remembering the last replies."""

    def __init__(self, engine: Engine, user: str = "tester") -> None:
        self.engine = engine
        self.user = user
        self.replies: list[Reply] = []
        self.history: list[Reply] = []

    def _run(self, event) -> list[Reply]:
        self.replies = self.engine.handle(self.user, event)
        self.history.extend(self.replies)
        return self.replies

    def send(self, text: str) -> list[Reply]:
        """A slash command if the text starts with « / », free text otherwise."""
        if text.startswith("/") and len(text) > 1:
            name, _, argument = text[1:].partition(" ")
            return self._run(Command(name, argument))
        return self._run(Say(text))

    def choose(self, payload: str) -> list[Reply]:
        return self._run(Choose(payload))

    @property
    def buttons(self) -> list[Button]:
        return [b for reply in self.replies for b in reply.all_buttons()]

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.buttons]

    @property
    def text(self) -> str:
        return "\n\n".join(reply.text for reply in self.replies)

    def button(self, label: str) -> Button:
        """The first button whose label contains ``label`` (case-insensitive)."""
        for button in self.buttons:
            if label.casefold() in button.label.casefold():
                return button
        raise AssertionError(f"no button {label!r} in {self.labels}")

    def press(self, label: str) -> list[Reply]:
        return self.choose(self.button(label).payload)

    def read_all(self, label: str | None = None) -> str:
        """Press ``label`` (if given), then « Suite » until the last page: the text of every page, in order."""
        if label is not None:
            self.press(label)
        pages = [self.text]
        while any(b.label.startswith("Suite") for b in self.buttons) and len(pages) < 30:
            self.press("Suite")
            pages.append(self.text)
        return "\n\n".join(pages)

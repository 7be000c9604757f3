"""What the Telegram channel needs from the advisor's engine: its public, typed API only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from dialogue.types import ChannelSettings, Event, Reply

if TYPE_CHECKING:
    from dialogue.storage.progress import ProgressStore
    from knowledge.loader import KnowledgeBase


class AdvisorEngine(Protocol):
    """The part of :class:`dialogue.engine.Engine` a channel uses."""

    @property
    def store(self) -> ProgressStore:
        """The progress database (exactly-once turns, health checks, rescue copy)."""

    @property
    def kb(self) -> KnowledgeBase:
        """The knowledge the PDF reports are built from."""

    @property
    def commands(self) -> list[tuple[str, str]]:
        """Every command with its French description, in the order shown to users."""

    def handle(self, user_id: str, event: Event) -> list[Reply]:
        """Answer one event of one user."""

    def mark_inactive(self, user_id: str) -> None:
        """Remember that the user blocked the bot."""

    def use_channel(self, settings: ChannelSettings) -> None:
        """Tell the engine about the channel (the bot's username, for invitation links)."""

    def close(self) -> None:
        """Close the progress database."""


def user_key(user_id: int) -> str:
    """The engine's user id for a Telegram user."""
    return f"tg:{user_id}"

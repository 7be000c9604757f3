"""How a feature plugs into the engine: one object, a few hooks, registered in one list.

A feature (the collective, the team, the PDF report…) lives in its own package under
``dialogue/features/``. It declares its commands, the payload kinds it owns and its
tables; the engine calls its hooks around every turn. Adding a feature is its package
plus one line in :func:`dialogue.assembly.features_for`: nothing to change in the engine,
the store, the types or the channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from dialogue.types import ChannelSettings, Event, Reply

if TYPE_CHECKING:
    from sqlite_utils import Database

    from dialogue.core import Core
    from dialogue.turn import Turn


class Feature(Protocol):
    """The hooks a feature may implement; :class:`BaseFeature` gives them all a neutral default."""

    #: Also the name of its namespace in the conversation context.
    name: str
    #: Slash commands it adds, as (name, French description), in the order shown to users.
    commands: Sequence[tuple[str, str]]
    #: Payload kinds it owns (the text before the first « : »).
    payload_kinds: frozenset[str]

    def bind(self, core: Core, settings: ChannelSettings) -> None:
        """Receive the engine's rooms (called once, when the engine is built)."""

    def help_lines(self) -> Sequence[str]:
        """Lines of /aide's list of commands (« - /collectif : … »)."""

    def help_section(self) -> str:
        """A section of /aide (e.g. what the feature keeps about the user), or « »."""

    def migrate(self, db: Database) -> None:
        """Create or upgrade the feature's tables (idempotent; run when a store is opened)."""

    def forget(self, db: Database, user_id: str) -> None:
        """Delete what the feature keeps about a person (inside /oublier's transaction)."""

    def before_turn(self, turn: Turn) -> list[Reply]:
        """Notices shown before the replies (e.g. a team answer waiting for the user)."""

    def on_event(self, turn: Turn, event: Event) -> list[Reply] | None:
        """Answer the event itself, or ``None`` to let the next feature and then the core answer it."""

    def on_group(self, user_id: str, group_chat: str, command: str, argument: str) -> list[Reply] | None:
        """A command typed in a group chat, or ``None``."""

    def after_turn(self, turn: Turn, replies: list[Reply]) -> list[Reply]:
        """See (and possibly complete) the turn's replies before they are saved and shown."""


class BaseFeature:
    """Neutral hooks: a feature overrides only what it needs."""

    name = ""
    commands: Sequence[tuple[str, str]] = ()
    payload_kinds: frozenset[str] = frozenset()

    def bind(self, core: Core, settings: ChannelSettings) -> None:
        return None

    def help_lines(self) -> Sequence[str]:
        return ()

    def help_section(self) -> str:
        return ""

    def migrate(self, db: Database) -> None:
        return None

    def forget(self, db: Database, user_id: str) -> None:
        return None

    def before_turn(self, turn: Turn) -> list[Reply]:
        return []

    def on_event(self, turn: Turn, event: Event) -> list[Reply] | None:
        return None

    def on_group(self, user_id: str, group_chat: str, command: str, argument: str) -> list[Reply] | None:
        return None

    def after_turn(self, turn: Turn, replies: list[Reply]) -> list[Reply]:
        return replies

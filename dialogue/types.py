"""Channel-agnostic events and replies exchanged with the dialogue engine.

Reply text uses a small markup that every channel can render:
``**bold**``, lines starting with ``- `` or ``• `` as list items,
and ``[label](https://url)`` links. Nothing else is interpreted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from dialogue.payloads import MAX_PAYLOAD_BYTES as MAX_PAYLOAD_BYTES

#: Invisible, zero-width: placed after ``]`` and ``*`` of a user's text, it keeps them from forming markup.
WORD_JOINER = "\u2060"


def literal(text: str) -> str:
    """Text typed by a user (a name, an answer), shown to someone else as typed: never a link, never bold.

    ``[Support](https://…)`` would otherwise render as a clickable link hiding its address,
    in the invitation or the group view someone else receives. A link needs ``](`` and bold
    needs ``**``; a word joiner after every ``]`` and ``*`` breaks both, in every channel that
    renders this markup, while the text reads the same.
    """
    return text.replace("]", "]" + WORD_JOINER).replace("*", "*" + WORD_JOINER)


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command such as ``/start orientation`` (name without the slash).

    ``group_chat`` names the group chat it was typed in (``None`` in a private chat):
    a channel-neutral key such as ``tg-group:-100123``.
    """

    name: str
    argument: str = ""
    group_chat: str | None = None


@dataclass(frozen=True, slots=True)
class Choose:
    """A button press, carrying the button's opaque payload."""

    payload: str


@dataclass(frozen=True, slots=True)
class Say:
    """Free text typed by the user."""

    text: str


Event = Command | Choose | Say


@dataclass(slots=True)
class ChannelSettings:
    """What the channel tells the engine about itself.

    ``bot_username`` (Telegram) turns invitations into ``https://t.me/<bot>?start=<code>``
    links; ``invitation_base`` (the web page) into ``<base><code>`` links; without either
    (terminal) people type the code with /rejoindre.
    """

    bot_username: str | None = None
    invitation_base: str | None = None

    def invitation_link(self, code: str) -> str | None:
        """The link that opens an invitation on this channel, or ``None`` (type /rejoindre CODE)."""
        if self.invitation_base:
            return f"{self.invitation_base}{code}"
        if self.bot_username:
            return f"https://t.me/{self.bot_username}?start={code}"
        return None


@dataclass(frozen=True, slots=True)
class Button:
    """One choice offered to the user."""

    label: str
    payload: str


class Attachment:
    """Files the channel builds and sends after a reply's text (see the ``report`` package).

    Each kind of attachment words its own captions and its apology, so that a channel
    sends any of them without knowing which feature asked for it.
    """

    __slots__ = ()
    kind: str
    #: Under the PDF, under the picture, and what the user reads when the files cannot be made.
    DOCUMENT_CAPTION = ""
    PICTURE_CAPTION = ""
    FAILED = "Désolé, le document n’a pas pu être préparé ; réessayez dans un moment."


@dataclass(frozen=True, slots=True)
class ReportRequest(Attachment):
    """Asks the channel to build the PDF report and the profile picture.

    The engine stays free of I/O: it hands over a snapshot of what the report
    needs, and the channel builds the files (see the ``report`` package).
    ``kind`` is ``"synthesis"`` or ``"formes"`` (the legal-form guide adds its
    comparison table).
    """

    DOCUMENT_CAPTION = "Votre synthèse d’orientation (PDF)"
    PICTURE_CAPTION = "Votre profil au regard des listes du document — ce n’est pas un score."
    FAILED = (
        "Désolé, le document n’a pas pu être préparé. Votre synthèse reste disponible ici avec /synthese ; "
        "réessayez dans un moment."
    )

    kind: str
    answers: Mapping[str, str | list[str] | None]
    day: date
    ptce_name: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to show the user.

    ``buttons`` is a tuple of rows. ``edit`` asks channels that can do so to
    update the message whose button was just pressed instead of sending a new
    one (used when toggling options of a multiple-choice question).
    ``attachment`` asks the channel to send the report after the text.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = field(default_factory=tuple)
    edit: bool = False
    attachment: Attachment | None = None

    def all_buttons(self) -> list[Button]:
        """Buttons in reading order, rows flattened."""
        return [button for row in self.buttons for button in row]

"""The chat page as HTML: plain forms that work without JavaScript, every text escaped.

Each button of a reply is a submit button carrying the engine's payload; the commands
menu, the message box and the « reprendre ailleurs » forms post to the same application.
The small script in ``static/chat.js`` only makes the same forms work without reloading.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from bot.web import texts
from bot.web.markup import inline, to_html
from bot.web.store import FileLink, Message


@dataclass(frozen=True, slots=True)
class PageState:
    """What one rendering of the page needs."""

    csrf: str
    turn: str
    messages: Sequence[Message] = ()
    commands: Sequence[tuple[str, str]] = ()
    help_sections: Sequence[str] = ()
    notices: Sequence[str] = field(default_factory=tuple)
    invitation: str | None = None
    max_text: int = 2000


def _hidden(state: PageState) -> str:
    return (
        f'<input type="hidden" name="csrf" value="{escape(state.csrf)}">'
        f'<input type="hidden" name="turn" value="{escape(state.turn)}">'
    )


def _buttons(message: Message, state: PageState) -> str:
    if not message.active or not message.buttons:
        return ""
    rows = []
    for row in message.buttons:
        cells = "".join(
            f'<button type="submit" name="choice" value="{escape(button.payload)}">{escape(button.label)}</button>'
            for button in row
        )
        rows.append(f'<div class="row">{cells}</div>')
    return f'<form method="post" action="/envoyer" class="choices">{_hidden(state)}{"".join(rows)}</form>'


def _files(message: Message) -> str:
    if message.failed:
        return f'<p class="failed">{escape(message.failed)}</p>'
    parts = []
    for link in message.files:
        url = f"/fichiers/{escape(link.id)}"
        if link.kind == "png":
            parts.append(
                f'<figure><img src="{url}" alt="{escape(link.caption)}" width="600" height="600">'
                f'<figcaption><a href="{url}?telecharger=1" download>{escape(texts.DOWNLOAD.format(caption=link.caption))}</a>'
                "</figcaption></figure>"
            )
        else:
            parts.append(f'<p><a class="download" href="{url}" download>{escape(texts.DOWNLOAD.format(caption=link.caption))}</a></p>')
    return "".join(parts)


@functools.lru_cache(maxsize=8192)
def _content(role: str, text: str, files: tuple[tuple[str, str, str], ...], failed: str) -> str:
    """A message's name and bubble, as HTML (cached: every page shows the older messages again)."""
    message = Message(0, role, text, files=[FileLink(*link) for link in files], failed=failed)
    who = texts.YOU if role == "user" else texts.ADVISOR
    body = f"<p>{escape(text)}</p>" if role == "user" else to_html(text)
    return f'<span class="who">{escape(who)}</span><div class="bubble">{body}{_files(message)}</div>'


def _message(message: Message, state: PageState, first_latest: bool) -> str:
    """One bubble; ``data-id`` lets the page's script replace it when a turn edits it."""
    classes = f"msg {message.role}" + (" latest" if message.active else "")
    anchor = ' id="derniere" tabindex="-1"' if first_latest else ""
    content = _content(message.role, message.text, tuple((f.id, f.kind, f.caption) for f in message.files), message.failed)
    return f'<li class="{classes}" data-id="{message.id}"{anchor}>{content}{_buttons(message, state)}</li>'


def render_messages(messages: Sequence[Message], state: PageState) -> str:
    """The bubbles of ``messages``; the first live one is where the page scrolls to."""
    first_latest = next((m.id for m in messages if m.active), None)
    return "".join(_message(m, state, m.id == first_latest) for m in messages)


def _welcome(state: PageState) -> str:
    return (
        f'<li class="msg bot latest welcome" id="derniere" tabindex="-1"><span class="who">{escape(texts.ADVISOR)}</span>'
        f'<div class="bubble"><p>{escape(texts.WELCOME)}</p></div>'
        f'<form method="post" action="/envoyer" class="choices">{_hidden(state)}'
        f'<div class="row"><button type="submit" name="command" value="start">{escape(texts.START_BUTTON)}</button></div></form></li>'
    )


def _invitation(state: PageState) -> str:
    if state.invitation is None:
        return ""
    code = state.invitation
    return (
        f'<div class="notice" role="status"><p>{inline(texts.INVITATION.format(code=code))}</p>'
        f'<form method="post" action="/envoyer">{_hidden(state)}<input type="hidden" name="argument" value="{escape(code)}">'
        f'<button type="submit" name="command" value="start">{escape(texts.INVITATION_BUTTON)}</button></form></div>'
    )


def _commands(state: PageState) -> str:
    buttons = "".join(
        f'<button type="submit" name="command" value="{escape(name)}"><span class="slash">/{escape(name)}</span> '
        f"{escape(description)}</button>"
        for name, description in state.commands
    )
    return (
        f'<details class="panel"><summary>{escape(texts.COMMANDS_TITLE)}</summary>'
        f'<form method="post" action="/envoyer" class="commands">{_hidden(state)}{buttons}</form></details>'
    )


def _resume(state: PageState) -> str:
    return (
        f'<details class="panel"><summary>{escape(texts.RESUME_TITLE)}</summary><p>{escape(texts.RESUME_EXPLAIN)}</p>'
        f'<form method="post" action="/reprendre/code">{_hidden(state)}<button type="submit">{escape(texts.RESUME_SHOW)}</button></form>'
        f'<form method="post" action="/reprendre" class="resume">{_hidden(state)}'
        f'<label for="code">{escape(texts.RESUME_CODE_LABEL)}</label>'
        '<input id="code" name="code" type="text" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" maxlength="20">'
        f'<button type="submit">{escape(texts.RESUME_USE)}</button></form></details>'
    )


def _privacy(state: PageState) -> str:
    sections = "".join(f'<div class="section">{to_html(section)}</div>' for section in (*state.help_sections, texts.WEB_PRIVACY))
    return f'<details class="panel" id="vos-donnees"><summary>{escape(texts.PRIVACY_TITLE)}</summary>{sections}</details>'


def render_notices(notices: Sequence[str]) -> str:
    return "".join(f'<div class="notice" role="status"><p>{inline(text)}</p></div>' for text in notices)


def render_page(state: PageState, newest: int = 0) -> str:
    """The whole page; ``newest``: id of the person's newest message (the script sends it back to get only what follows)."""
    items = render_messages(state.messages, state) or _welcome(state)
    notices = render_notices(state.notices)
    return (
        "<!doctype html>\n<html lang='fr'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(texts.TITLE)}</title><link rel='stylesheet' href='/static/chat.css'>"
        "<link rel='icon' href='/static/favicon.svg' type='image/svg+xml'>"
        "<script src='/static/chat.js' defer></script></head><body>"
        f"<a class='skip' href='#texte'>{escape(texts.SKIP_LINK)}</a>"
        f"<header><h1>{escape(texts.TITLE)}</h1><p>{escape(texts.TAGLINE)}</p></header>"
        f"<main id='contenu'>{notices}{_invitation(state)}"
        f"<section aria-label='{escape(texts.CONVERSATION)}' id='conversation'><ol class='messages' data-newest='{newest}'>{items}</ol></section>"
        f"<form method='post' action='/envoyer' class='composer' id='saisie'>{_hidden(state)}"
        f"<label for='texte'>{escape(texts.INPUT_LABEL)}</label>"
        f"<p class='hint' id='aide-saisie'>{escape(texts.INPUT_HINT)}</p>"
        f"<div class='line'><input id='texte' name='text' type='text' maxlength='{state.max_text}' autocomplete='off' "
        f"aria-describedby='aide-saisie'><button type='submit'>{escape(texts.SEND_BUTTON)}</button></div></form>"
        f"<nav aria-label='{escape(texts.COMMANDS_TITLE)}'>{_commands(state)}{_resume(state)}{_privacy(state)}</nav>"
        "</main>"
        f"<div id='annonce' class='visually-hidden' role='status' aria-live='polite' data-new='{escape(texts.NEW_REPLIES)}'></div>"
        "</body></html>"
    )

"""Terminal chat: the full engine in a terminal, choices numbered, piped input accepted."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from dialogue.storage.errors import StorageError
from dialogue.types import Attachment, Button, Choose, Command, Event, Reply, Say

_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def render_text(text: str, *, colour: bool) -> str:
    """Markup to terminal text: bold as ANSI when colour is on, links as « label (url) »."""
    text = _LINK.sub(r"\1 (\2)", text)
    return _BOLD.sub(lambda m: f"\033[1m{m.group(1)}\033[0m" if colour else m.group(1), text)


def render_replies(
    replies: list[Reply], out: TextIO, *, colour: bool, on_report: Callable[[Attachment], object] | None = None
) -> list[Button]:
    """Print replies; return the buttons of the screen in the order of their numbers.

    One screen has one numbering, the engine's (:func:`dialogue.buttons.numbered`): the choice
    the screen asks for is numbered from 1 even when a page is printed above it, so a digit
    always picks the choice printed next to it, and a step's options keep their numbers.
    """
    from dialogue.buttons import numbered, numbers

    for reply, shown in zip(replies, numbers(replies), strict=True):
        print(render_text(reply.text, colour=colour), file=out)
        if reply.attachment is not None and on_report is not None:
            on_report(reply.attachment)
        for number, button in zip(shown, reply.all_buttons(), strict=True):
            print(f"  {number}. {button.label}", file=out)
        print(file=out)
    return numbered(replies)


def parse_input(line: str, buttons: list[Button]) -> Event | None:
    """A number picks a button, ``/name arg`` is a command, anything else is free text."""
    text = line.strip()
    if text.isdigit() and buttons:
        index = int(text)
        if 1 <= index <= len(buttons):
            return Choose(buttons[index - 1].payload)
        return None
    if text.startswith("/") and len(text) > 1:
        name, _, argument = text[1:].partition(" ")
        return Command(name, argument.strip())
    return Say(text)


def run_chat(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run the conversation until end of input or Ctrl-C."""
    from dialogue.assembly import create_engine

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty() and stdout.isatty()
    user = args.user or getpass.getuser() or "local"
    # A name from a non-UTF-8 terminal arrives with surrogate escapes SQLite cannot store.
    user = user.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    try:
        from bot.team_cli import engine_options

        engine = create_engine(args.db, getattr(args, "data", None), **engine_options(args))
    except StorageError as error:
        print(f"Impossible d’ouvrir la base de données : {error}", file=sys.stderr)
        return 1
    user_id = f"cli:{user}"
    from bot.report_files import default_directory, write_files

    directory = Path(getattr(args, "out", None) or default_directory(args.db))

    def on_report(request: Attachment) -> None:
        write_files(engine.kb, request, directory, stdout)

    try:
        buttons = render_replies(engine.handle(user_id, Command("start")), stdout, colour=interactive)
        if interactive:
            print("(Tapez le numéro d’un choix, une question, ou /aide. Ctrl-D pour quitter.)\n", file=stdout)
        while True:
            if interactive:
                print("> ", end="", file=stdout, flush=True)
            line = stdin.readline()
            if not line:
                # Ctrl-D: leave on a fresh line with a goodbye, like Ctrl-C.
                print("\nÀ bientôt !" if interactive else "À bientôt !", file=stdout)
                break
            if not interactive:
                print(f"> {line.strip()}", file=stdout)
            event = parse_input(line, buttons)
            if event is None:
                print(f"Choisissez un numéro entre 1 et {len(buttons)}.\n", file=stdout)
                continue
            replies = engine.handle(user_id, event)
            new_buttons = render_replies(replies, stdout, colour=interactive, on_report=on_report)
            if new_buttons:
                buttons = new_buttons
            stdout.flush()
    except KeyboardInterrupt:
        print("\nÀ bientôt !", file=stdout)
    except StorageError as error:
        print(f"Erreur de base de données : {error}", file=sys.stderr)
        return 1
    finally:
        engine.close()
    return 0

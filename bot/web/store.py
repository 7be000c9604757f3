"""The web channel's tables, in the progress database: sessions, what each page shows, files, resume codes.

Sessions are stored by a hash of their id, never the id itself: someone reading the
database cannot take over a browser's session. Everything here belongs to an engine
user id (``web:<random>``) and is deleted with it by ``/oublier`` (a forget hook of the
store runs inside the same transaction).

Every method runs in the engine's worker thread: the progress connection is not shared.
That thread also owns two caches in front of the tables, so that a turn reads nothing
but what the engine reads: which person each session speaks as, and what each person's
page shows now (its newest message, its live buttons, the forms already answered).
They are kept exact by the writes below, all made by this one process (``ptce-bot web``
serves a database alone); a turn that fails drops them (its writes were rolled back),
and a session the cache knows but the table no longer has is caught by :meth:`WebStore.touch`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from dialogue.types import Button, Reply

#: Prefix of the engine's user ids for web sessions.
USER_PREFIX = "web:"
#: Messages kept per person (older ones are dropped: the page shows the recent conversation).
KEPT_MESSAGES = 60
#: Report files kept per person (the latest requests).
KEPT_FILES = 6
#: How long a code of « Reprendre sur un autre appareil » stays valid.
RESUME_CODE_SECONDS = 15 * 60
#: Letters of resume codes: no 0/O, 1/I/L, so that a code read aloud or copied by hand works.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
#: People (and sessions) whose page state the worker keeps in memory, least recently used dropped first.
CACHED_PEOPLE = 20_000

migrations = Migrations("ptce-web")


@migrations()
def m001_web_tables(db: Database) -> None:
    db.table("web_sessions").create(
        {"sid_hash": str, "user_id": str, "created": float, "last_seen": float}, pk="sid_hash", if_not_exists=True
    )
    db.table("web_sessions").create_index(["user_id"], if_not_exists=True)
    db.table("web_messages").create(
        {
            "id": int,
            "user_id": str,
            "turn": str,
            "role": str,
            "text": str,
            "buttons": str,
            "files": str,
            "at": float,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("web_messages").create_index(["user_id", "id"], if_not_exists=True)
    db.table("web_files").create(
        {"id": str, "user_id": str, "name": str, "mime": str, "content": bytes, "at": float}, pk="id", if_not_exists=True
    )
    db.table("web_files").create_index(["user_id"], if_not_exists=True)
    db.table("web_resume_codes").create({"code_hash": str, "user_id": str, "expires": float}, pk="code_hash", if_not_exists=True)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_user_id() -> str:
    return USER_PREFIX + secrets.token_urlsafe(18)


def normalise_code(raw: str) -> str:
    """A resume code as typed (spaces, dashes, lower case) to its canonical letters."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())[: CODE_LENGTH + 4]


def format_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


@dataclass(frozen=True, slots=True)
class FileLink:
    """A file built for a reply (the PDF or the picture), or the promise of one."""

    id: str
    kind: str  # "pdf" or "png"
    caption: str


@dataclass(slots=True)
class Message:
    """One bubble of the page."""

    id: int
    role: str  # "user" or "bot"
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    files: list[FileLink] = field(default_factory=list)
    #: Shown instead of the files when they could not be made (or could not be made yet).
    failed: str = ""
    active: bool = False


@dataclass(slots=True)
class PageView:
    """What a person's page shows now, as far as a turn needs it (cached; rebuilt from the table when missing)."""

    #: Id of the newest message (0: none yet): the page a script shows is up to date when it shows this one.
    newest: int = 0
    #: The form (``turn``) of the latest message of the person, whose bot replies have live buttons.
    last_turn: str | None = None
    #: The live buttons (to show the label of the one pressed).
    screen: list[Button] = field(default_factory=list)
    #: Forms already answered, most recent last (as many as messages are kept: a double click, a form sent again).
    turns: dict[str, None] = field(default_factory=dict)

    def answered(self, turn: str) -> None:
        self.turns.pop(turn, None)
        self.turns[turn] = None
        while len(self.turns) > KEPT_MESSAGES:
            del self.turns[next(iter(self.turns))]


class StaleSession(Exception):
    """The session cache named a session the table no longer has: the turn is run again without the cache."""


def _encode_buttons(reply: Reply) -> str:
    return json.dumps([[[b.label, b.payload] for b in row] for row in reply.buttons], ensure_ascii=False)


def _decode_buttons(text: str) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(Button(label, payload) for label, payload in row) for row in json.loads(text or "[]"))


class WebStore:
    """Reads and writes the web channel's tables (in the engine's worker thread only)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        migrations.apply(db)
        #: Engine user ids erased by /oublier during the current turn (filled by the forget hook).
        self.forgotten: set[str] = set()
        #: Session hash → engine user id, for sessions seen since start-up.
        self._sessions: OrderedDict[str, str] = OrderedDict()
        #: Engine user id → what the person's page shows.
        self._views: OrderedDict[str, PageView] = OrderedDict()

    def forget(self, db: Database, user_id: str) -> None:
        """The forget hook: everything the web channel keeps about ``user_id``."""
        for table in ("web_messages", "web_files", "web_resume_codes", "web_sessions"):
            db.execute(f"DELETE FROM {table} WHERE user_id = ?", [user_id])
        self.forgotten.add(user_id)
        self._views.pop(user_id, None)
        for key in [key for key, user in self._sessions.items() if user == user_id]:
            del self._sessions[key]

    def drop_caches(self) -> None:
        """After a rolled-back turn: what the caches learnt from its writes may not be in the tables."""
        self._sessions.clear()
        self._views.clear()

    def _remember(self, cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        if len(cache) > CACHED_PEOPLE:
            cache.popitem(last=False)

    def prune(self, session_seconds: float) -> None:
        """Forget sessions whose cookie has expired, and codes past their time (at start-up)."""
        now = time.time()
        with self.db.atomic():
            self.db.execute("DELETE FROM web_sessions WHERE last_seen < ?", [now - session_seconds])
            self.db.execute("DELETE FROM web_resume_codes WHERE expires < ?", [now])

    # ------------------------------------------------------------------ sessions

    def user_of(self, sid: str) -> str | None:
        key = digest(sid)
        user = self._sessions.get(key)
        if user is not None:
            self._sessions.move_to_end(key)
            return user
        row = self.db.execute("SELECT user_id FROM web_sessions WHERE sid_hash = ?", [key]).fetchone()
        if row is None:
            return None
        self._remember(self._sessions, key, row[0])
        return str(row[0])

    def bind(self, sid: str, user_id: str) -> None:
        """The session ``sid`` now speaks as ``user_id`` (inside the caller's transaction)."""
        now = time.time()
        key = digest(sid)
        self.db.execute(
            "INSERT INTO web_sessions (sid_hash, user_id, created, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(sid_hash) DO UPDATE SET user_id = excluded.user_id, last_seen = excluded.last_seen",
            [key, user_id, now, now],
        )
        self._remember(self._sessions, key, user_id)

    def touch(self, sid: str) -> None:
        """Inside the caller's transaction: the session was used now.

        :class:`StaleSession` if the session is no longer in the table (the cache named it).
        """
        key = digest(sid)
        cursor = self.db.execute("UPDATE web_sessions SET last_seen = ? WHERE sid_hash = ?", [time.time(), key])
        if cursor.rowcount == 0:
            self._sessions.pop(key, None)
            raise StaleSession

    # ------------------------------------------------------------------ messages

    def view(self, user_id: str) -> PageView:
        """What the person's page shows now (one query when not cached)."""
        view = self._views.get(user_id)
        if view is not None:
            self._views.move_to_end(user_id)
            return view
        rows = self.db.execute(
            "SELECT id, role, turn, buttons FROM web_messages WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            [user_id, KEPT_MESSAGES + 8],
        ).fetchall()
        view = PageView(newest=rows[0][0] if rows else 0)
        for row in reversed(rows):
            view.answered(row[2])
        view.last_turn = next((row[2] for row in rows if row[1] == "user"), None)
        for _, role, turn, buttons in reversed(rows):
            if role == "bot" and turn == view.last_turn:
                view.screen.extend(button for line in _decode_buttons(buttons) for button in line)
        self._remember(self._views, user_id, view)
        return view

    def seen_turn(self, user_id: str, turn: str) -> bool:
        """True if the form ``turn`` was already handled (a double click, a re-sent form)."""
        return turn in self.view(user_id).turns

    def add_user_message(self, user_id: str, turn: str, text: str) -> Message:
        """The person's bubble of a new turn (an empty ``text`` is not shown); the buttons on screen go."""
        cursor = self.db.execute(
            "INSERT INTO web_messages (user_id, turn, role, text, buttons, files, at) VALUES (?, ?, 'user', ?, '[]', '{}', ?)",
            [user_id, turn, text, time.time()],
        )
        view = self.view(user_id)
        view.newest = int(cursor.lastrowid or 0)
        view.last_turn = turn
        view.screen = []
        view.answered(turn)
        return Message(view.newest, "user", text)

    def add_replies(self, user_id: str, turn: str, replies: list[Reply], files: list[dict[str, Any]]) -> list[Message]:
        """The engine's replies; ``files[i]`` describes the files promised by reply ``i`` (or is empty).

        A reply that asks to edit (a toggled option) replaces the last bot message when that
        message still has buttons, as Telegram edits the message whose button was pressed.
        Returns the bot messages written (an edited one keeps its id), as the page shows them.
        """
        now = time.time()
        view = self.view(user_id)
        written: list[Message] = []
        for reply, promised in zip(replies, files):
            buttons = tuple(tuple(line) for line in reply.buttons)
            if reply.edit and not promised:
                last = self.db.execute(
                    "SELECT id, role, buttons FROM web_messages WHERE user_id = ? AND role = 'bot' ORDER BY id DESC LIMIT 1",
                    [user_id],
                ).fetchone()
                if last is not None and last[2] not in ("", "[]"):
                    self.db.execute(
                        "UPDATE web_messages SET text = ?, buttons = ?, turn = ?, at = ? WHERE id = ?",
                        [reply.text, _encode_buttons(reply), turn, now, last[0]],
                    )
                    written = [message for message in written if message.id != last[0]]
                    written.append(Message(last[0], "bot", reply.text, buttons, active=True))
                    view.screen.extend(button for line in buttons for button in line)
                    continue
            cursor = self.db.execute(
                "INSERT INTO web_messages (user_id, turn, role, text, buttons, files, at) VALUES (?, ?, 'bot', ?, ?, ?, ?)",
                [user_id, turn, reply.text, _encode_buttons(reply), json.dumps(promised, ensure_ascii=False), now],
            )
            view.newest = int(cursor.lastrowid or 0)
            written.append(Message(view.newest, "bot", reply.text, buttons, active=True))
            view.screen.extend(button for line in buttons for button in line)
        if view.newest % 8 == 0:  # trimmed now and then, not at every turn: a few messages more for a while
            self.db.execute(
                "DELETE FROM web_messages WHERE user_id = ? AND id <= "
                "(SELECT id FROM web_messages WHERE user_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                [user_id, user_id, KEPT_MESSAGES],
            )
        return written

    def messages(self, user_id: str, limit: int = KEPT_MESSAGES) -> list[Message]:
        """The conversation, oldest first; the bot messages of the last turn have live buttons."""
        rows = self.db.execute(
            "SELECT id, role, text, buttons, files, turn FROM web_messages WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            [user_id, limit],
        ).fetchall()
        rows.reverse()
        last_turn = next((row[5] for row in reversed(rows) if row[1] == "user"), None)
        present: set[str] | None = None
        messages: list[Message] = []
        for row_id, role, text, buttons, files, turn in rows:
            if role == "user" and not text:
                continue  # a toggled option: the bot's message changed in place
            active = role == "bot" and turn == last_turn
            message = Message(row_id, role, text, _decode_buttons(buttons) if active else (), active=active)
            promised = json.loads(files) if files not in ("", "{}", None) else None
            if promised:
                if present is None:
                    present = {row[0] for row in self.db.execute("SELECT id FROM web_files WHERE user_id = ?", [user_id]).fetchall()}
                links = [FileLink(item["id"], item["kind"], item["caption"]) for item in promised.get("files", [])]
                if all(link.id in present for link in links):
                    message.files = links
                else:
                    message.failed = promised.get("failed", "")
            messages.append(message)
        return messages

    def screen_buttons(self, user_id: str) -> list[Button]:
        """The buttons on screen now (to show the label of the one pressed)."""
        return self.view(user_id).screen

    def set_failure(self, user_id: str, file_ids: list[str], text: str) -> None:
        """The files promised under ``file_ids`` will not come: say ``text`` instead."""
        for row_id, files in self.db.execute("SELECT id, files FROM web_messages WHERE user_id = ?", [user_id]).fetchall():
            promised = json.loads(files or "{}")
            if promised and {item["id"] for item in promised.get("files", [])} & set(file_ids):
                promised["failed"] = text
                self.db.execute("UPDATE web_messages SET files = ? WHERE id = ?", [json.dumps(promised, ensure_ascii=False), row_id])

    # ------------------------------------------------------------------ files

    def add_file(self, user_id: str, file_id: str, name: str, mime: str, content: bytes) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO web_files (id, user_id, name, mime, content, at) VALUES (?, ?, ?, ?, ?, ?)",
                [file_id, user_id, name, mime, content, time.time()],
            )
            self.db.execute(
                "DELETE FROM web_files WHERE user_id = ? AND id NOT IN "
                "(SELECT id FROM web_files WHERE user_id = ? ORDER BY at DESC LIMIT ?)",
                [user_id, user_id, KEPT_FILES],
            )

    def file(self, user_id: str, file_id: str) -> tuple[str, str, bytes] | None:
        row = self.db.execute(
            "SELECT name, mime, content FROM web_files WHERE id = ? AND user_id = ?", [file_id, user_id]
        ).fetchone()
        return (row[0], row[1], bytes(row[2])) if row else None

    # ------------------------------------------------------------------ resume on another device

    def new_resume_code(self, user_id: str) -> str:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        with self.db.atomic():
            self.db.execute("DELETE FROM web_resume_codes WHERE user_id = ? OR expires < ?", [user_id, time.time()])
            self.db.execute(
                "INSERT INTO web_resume_codes (code_hash, user_id, expires) VALUES (?, ?, ?)",
                [digest(code), user_id, time.time() + RESUME_CODE_SECONDS],
            )
        return code

    def redeem(self, sid: str, raw_code: str) -> str | None:
        """Bind ``sid`` to the person whose code this is (used once); ``None`` if the code is wrong or old."""
        code = normalise_code(raw_code)
        with self.db.atomic():
            row = self.db.execute(
                "SELECT user_id, expires FROM web_resume_codes WHERE code_hash = ?", [digest(code)]
            ).fetchone()
            if row is None:
                return None
            self.db.execute("DELETE FROM web_resume_codes WHERE code_hash = ?", [digest(code)])
            if row[1] < time.time():
                return None
            self.bind(sid, row[0])
        return str(row[0])

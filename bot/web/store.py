"""The web channel's tables, in the progress database: sessions, what each page shows, files, resume codes.

Sessions are stored by a hash of their id, never the id itself: someone reading the
database cannot take over a browser's session. Everything here belongs to an engine
user id (``web:<random>``) and is deleted with it by ``/oublier`` (a forget hook of the
store runs inside the same transaction).

Every method runs in the engine's worker thread: the progress connection is not shared.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
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

    def forget(self, db: Database, user_id: str) -> None:
        """The forget hook: everything the web channel keeps about ``user_id``."""
        for table in ("web_messages", "web_files", "web_resume_codes", "web_sessions"):
            db.execute(f"DELETE FROM {table} WHERE user_id = ?", [user_id])
        self.forgotten.add(user_id)

    def prune(self, session_seconds: float) -> None:
        """Forget sessions whose cookie has expired, and codes past their time (at start-up)."""
        now = time.time()
        with self.db.atomic():
            self.db.execute("DELETE FROM web_sessions WHERE last_seen < ?", [now - session_seconds])
            self.db.execute("DELETE FROM web_resume_codes WHERE expires < ?", [now])

    # ------------------------------------------------------------------ sessions

    def user_of(self, sid: str) -> str | None:
        row = self.db.execute("SELECT user_id FROM web_sessions WHERE sid_hash = ?", [digest(sid)]).fetchone()
        return row[0] if row else None

    def bind(self, sid: str, user_id: str) -> None:
        """The session ``sid`` now speaks as ``user_id`` (inside the caller's transaction)."""
        now = time.time()
        self.db.execute(
            "INSERT INTO web_sessions (sid_hash, user_id, created, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(sid_hash) DO UPDATE SET user_id = excluded.user_id, last_seen = excluded.last_seen",
            [digest(sid), user_id, now, now],
        )

    def touch(self, sid: str) -> None:
        """Inside the caller's transaction: the session was used now."""
        self.db.execute("UPDATE web_sessions SET last_seen = ? WHERE sid_hash = ?", [time.time(), digest(sid)])

    # ------------------------------------------------------------------ messages

    def seen_turn(self, user_id: str, turn: str) -> bool:
        """True if the form ``turn`` was already handled (a double click, a re-sent form)."""
        row = self.db.execute("SELECT 1 FROM web_messages WHERE user_id = ? AND turn = ? LIMIT 1", [user_id, turn]).fetchone()
        return row is not None

    def add_user_message(self, user_id: str, turn: str, text: str) -> None:
        self.db.execute(
            "INSERT INTO web_messages (user_id, turn, role, text, buttons, files, at) VALUES (?, ?, 'user', ?, '[]', '{}', ?)",
            [user_id, turn, text, time.time()],
        )

    def add_replies(self, user_id: str, turn: str, replies: list[Reply], files: list[dict[str, Any]]) -> None:
        """The engine's replies; ``files[i]`` describes the files promised by reply ``i`` (or is empty).

        A reply that asks to edit (a toggled option) replaces the last bot message when that
        message still has buttons, as Telegram edits the message whose button was pressed.
        """
        now = time.time()
        for reply, promised in zip(replies, files):
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
                    continue
            self.db.execute(
                "INSERT INTO web_messages (user_id, turn, role, text, buttons, files, at) VALUES (?, ?, 'bot', ?, ?, ?, ?)",
                [user_id, turn, reply.text, _encode_buttons(reply), json.dumps(promised, ensure_ascii=False), now],
            )
        newest = self.db.execute("SELECT max(id) FROM web_messages").fetchone()[0] or 0
        if newest % 8 == 0:  # trimmed now and then, not at every turn: a few messages more for a while
            self.db.execute(
                "DELETE FROM web_messages WHERE user_id = ? AND id <= "
                "(SELECT id FROM web_messages WHERE user_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                [user_id, user_id, KEPT_MESSAGES],
            )

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
        rows = self.db.execute(
            "SELECT buttons FROM web_messages WHERE user_id = ? AND role = 'bot' AND turn = "
            "(SELECT turn FROM web_messages WHERE user_id = ? AND role = 'user' ORDER BY id DESC LIMIT 1)",
            [user_id, user_id],
        ).fetchall()
        return [button for (buttons,) in rows for row in _decode_buttons(buttons) for button in row]

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

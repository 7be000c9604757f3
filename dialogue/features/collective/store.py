"""Collectives, memberships and invitation codes in SQLite (same database as the progress).

Where members' answers come from
--------------------------------
A member answers the orientation as usual: their answers stay in the
``answers`` table, under their own user id, and nowhere else. The group view
reads them **at the time of viewing**, for the members whose orientation
counts for this collective (``collective_members.counts = 1``, at most one
collective per person at a time). So a member who corrects an answer corrects
the group view too; a member who leaves, switches their orientation to another
collective or uses /oublier stops counting at once.

When the coordinator **closes** a collective, the counted answers are copied
into ``collective_answers``: the view of a closed collective no longer moves
(« no new answers »), and its members are free to count for another one.
/oublier deletes those copies too (:func:`forget_person`).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from dialogue.clock import now_iso
from dialogue.features.collective.moves import create_moves_table, note_departure, note_move, unlink_moves
from dialogue.storage.schema import apply_migrations

#: Codes travel in Telegram's ``start`` parameter (≤ 64 characters of ``A-Za-z0-9_-``) and are
#: typed by hand in the terminal: lower case (the engine lower-cases command arguments), no
#: look-alike characters, four groups of five. 32²⁰ = 2¹⁰⁰ possibilities: not guessable.
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CODE_GROUPS = 4
CODE_GROUP_LENGTH = 5
CODE_PATTERN = re.compile(r"^[a-z2-9]{5}(-[a-z2-9]{5}){3}$")
COLLECTIVE_ID_LENGTH = 8

COORDINATOR = "coordinator"
MEMBER = "member"
INVITED = "invited"  # opened the invitation, not decided yet
JOINED = "joined"
DECLINED = "declined"
LEFT = "left"
OPEN = "open"
CLOSED = "closed"


def create_tables(db: Database) -> None:
    """Schema of the collectives (applied by the ``m_collectives_001`` migration below)."""
    db.table("collectives").create(
        {
            "id": str,
            "name": str,
            "coordinator_id": str,
            "coordinator_name": str,
            "status": str,
            "members_see_view": int,
            "group_chat": str,
            "created_at": str,
            "closed_at": str,
        },
        pk="id",
        not_null={"name", "coordinator_id", "status"},
        if_not_exists=True,
    )
    db.table("collectives").create_index(["coordinator_id"], if_not_exists=True)
    db.table("collectives").create_index(["group_chat"], if_not_exists=True)
    db.table("collective_codes").create(
        {"code": str, "collective_id": str, "created_at": str, "revoked_at": str},
        pk="code",
        foreign_keys=[("collective_id", "collectives", "id")],
        if_not_exists=True,
    )
    db.table("collective_codes").create_index(["collective_id"], if_not_exists=True)
    db.table("collective_members").create(
        {
            "collective_id": str,
            "user_id": str,
            "role": str,
            "status": str,
            "signed_name": str,
            "counts": int,
            "invited_at": str,
            "joined_at": str,
            "left_at": str,
        },
        pk=("collective_id", "user_id"),
        foreign_keys=[("collective_id", "collectives", "id")],
        if_not_exists=True,
    )
    db.table("collective_members").create_index(["user_id"], if_not_exists=True)
    db.table("collective_answers").create(
        {"collective_id": str, "user_id": str, "question": str, "value": str, "skipped": int},
        pk=("collective_id", "user_id", "question"),
        foreign_keys=[("collective_id", "collectives", "id")],
        if_not_exists=True,
    )
    db.table("collective_answers").create_index(["user_id"], if_not_exists=True)


migrations = Migrations("ptce_collectives")


@migrations()
def m_collectives_001(db: Database) -> None:
    """Collectives, memberships, invitation codes (created by the core set in earlier versions)."""
    create_tables(db)


@migrations()
def m_collectives_002_published_counts(db: Database) -> None:
    """The counts a group view shows, published in batches, and the arrivals and departures that count towards a batch."""
    db.table("collective_published").create(
        {"collective_id": str, "question": str, "counts": str, "answered": int, "skipped": int, "published_at": str,
         "history_mark": int, "moves_mark": int},
        pk=("collective_id", "question"),
        if_not_exists=True,
    )
    create_moves_table(db)


def ensure_collective_tables(db: Database) -> None:
    apply_migrations(db, migrations)


def forget_person(db: Database, user_id: str) -> None:
    """/oublier: the person's memberships, frozen answers, and the collectives they coordinate.

    Runs inside the caller's transaction (the store's ``forget``).
    """
    note_departure(db, user_id)
    unlink_moves(db, user_id)
    owned = [row["id"] for row in db.query("SELECT id FROM collectives WHERE coordinator_id = ?", [user_id])]
    for collective_id in owned:
        _delete_collective(db, collective_id)
    db.execute("DELETE FROM collective_answers WHERE user_id = ?", [user_id])
    db.execute("DELETE FROM collective_members WHERE user_id = ?", [user_id])


def _delete_collective(db: Database, collective_id: str) -> None:
    for table in ("collective_published", "collective_moves", "collective_answers", "collective_members",
                  "collective_codes"):
        db.execute(f"DELETE FROM {table} WHERE collective_id = ?", [collective_id])
    db.execute("DELETE FROM collectives WHERE id = ?", [collective_id])


def new_code() -> str:
    return "-".join(
        "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LENGTH)) for _ in range(CODE_GROUPS)
    )


def normalise_code(text: str) -> str:
    """What the person typed, as a stored code: lower case, spaces removed, dashes restored."""
    compact = re.sub(r"[\s_-]+", "", text or "").lower()
    if len(compact) != CODE_GROUPS * CODE_GROUP_LENGTH:
        return compact
    return "-".join(compact[i : i + CODE_GROUP_LENGTH] for i in range(0, len(compact), CODE_GROUP_LENGTH))


def looks_like_code(text: str) -> bool:
    return bool(CODE_PATTERN.match(normalise_code(text)))


#: A code inside a sentence or a pasted link: four groups with their dashes, or twenty characters in a row.
_CODE_IN_TEXT = re.compile(r"(?<![a-z0-9])([a-z2-9]{5}(?:-[a-z2-9]{5}){3}|[a-z2-9]{20})(?![a-z0-9])")


def code_in(text: str) -> str | None:
    """The invitation code someone pasted in a sentence (« voici mon code : … »), or ``None``."""
    found = _CODE_IN_TEXT.search((text or "").lower())
    return normalise_code(found.group(1)) if found else None


@dataclass(frozen=True, slots=True)
class Collective:
    id: str
    name: str
    coordinator_id: str
    coordinator_name: str
    status: str
    members_see_view: bool
    group_chat: str | None

    @property
    def closed(self) -> bool:
        return self.status == CLOSED


@dataclass(frozen=True, slots=True)
class Membership:
    collective: Collective
    user_id: str
    role: str
    status: str
    signed_name: str | None
    counts: bool

    @property
    def is_coordinator(self) -> bool:
        return self.role == COORDINATOR

    @property
    def active(self) -> bool:
        return self.status == JOINED


@dataclass(frozen=True, slots=True)
class Headcount:
    invited: int  # people who opened an invitation (the coordinator is not counted)
    joined: int  # members now, the coordinator included
    signed: tuple[str, ...]


def _collective(row: dict) -> Collective:
    return Collective(
        id=row["id"],
        name=row["name"],
        coordinator_id=row["coordinator_id"],
        coordinator_name=row["coordinator_name"] or "",
        status=row["status"],
        members_see_view=bool(row["members_see_view"]),
        group_chat=row["group_chat"],
    )


_MEMBERSHIP_SELECT = (
    "SELECT c.*, m.user_id AS m_user, m.role AS m_role, m.status AS m_status, m.signed_name AS m_signed, "
    "m.counts AS m_counts FROM collective_members m JOIN collectives c ON c.id = m.collective_id "
)


def _membership(row: dict) -> Membership:
    return Membership(_collective(row), row["m_user"], row["m_role"], row["m_status"], row["m_signed"], bool(row["m_counts"]))


class CollectiveStore:
    """Reads and writes collectives; takes the progress store's database handle."""

    def __init__(self, db: Database) -> None:
        self.db = db
        ensure_collective_tables(db)

    # ------------------------------------------------------------------ collectives

    def create(self, coordinator_id: str, name: str, coordinator_name: str) -> tuple[Collective, str]:
        """A new open collective, its coordinator as first member, and its invitation code."""
        stamp = now_iso()
        collective_id = secrets.token_hex(COLLECTIVE_ID_LENGTH // 2)
        code = new_code()
        with self.db.atomic():
            counts = 0 if self._counting(coordinator_id) else 1
            self.db.execute(
                "INSERT INTO collectives (id, name, coordinator_id, coordinator_name, status, members_see_view, "
                "group_chat, created_at, closed_at) VALUES (?, ?, ?, ?, ?, 0, NULL, ?, NULL)",
                [collective_id, name, coordinator_id, coordinator_name, OPEN, stamp],
            )
            self.db.execute(
                "INSERT INTO collective_members (collective_id, user_id, role, status, signed_name, counts, "
                "invited_at, joined_at, left_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                [collective_id, coordinator_id, COORDINATOR, JOINED, None, counts, stamp, stamp],
            )
            self.db.execute(
                "INSERT INTO collective_codes (code, collective_id, created_at, revoked_at) VALUES (?, ?, ?, NULL)",
                [code, collective_id, stamp],
            )
        collective = self.get(collective_id)
        assert collective is not None  # just written in this transaction
        return collective, code

    def get(self, collective_id: str) -> Collective | None:
        rows = list(self.db.query("SELECT * FROM collectives WHERE id = ?", [collective_id]))
        return _collective(rows[0]) if rows else None

    def coordinated_by(self, user_id: str) -> list[Collective]:
        return [_collective(r) for r in self.db.query("SELECT * FROM collectives WHERE coordinator_id = ? ORDER BY created_at, id", [user_id])]

    def set_members_see_view(self, collective_id: str, allowed: bool) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE collectives SET members_see_view = ? WHERE id = ?", [int(allowed), collective_id])

    def close(self, collective_id: str) -> None:
        """No new answers: freeze the counted answers, revoke the code, free the members' choice."""
        with self.db.atomic():
            self.db.execute(
                "INSERT OR REPLACE INTO collective_answers (collective_id, user_id, question, value, skipped) "
                "SELECT m.collective_id, a.user_id, a.question, a.value, a.skipped FROM answers a "
                "JOIN collective_members m ON m.user_id = a.user_id "
                "WHERE m.collective_id = ? AND m.status = ? AND m.counts = 1",
                [collective_id, JOINED],
            )
            self.db.execute("UPDATE collective_members SET counts = 0 WHERE collective_id = ?", [collective_id])
            self.db.execute(
                "UPDATE collective_codes SET revoked_at = ? WHERE collective_id = ? AND revoked_at IS NULL",
                [now_iso(), collective_id],
            )
            self.db.execute(
                "UPDATE collectives SET status = ?, closed_at = ? WHERE id = ?", [CLOSED, now_iso(), collective_id]
            )

    def delete(self, collective_id: str) -> None:
        with self.db.atomic():
            _delete_collective(self.db, collective_id)

    # ------------------------------------------------------------------ codes

    def active_code(self, collective_id: str) -> str | None:
        rows = list(
            self.db.query(
                "SELECT code FROM collective_codes WHERE collective_id = ? AND revoked_at IS NULL "
                "ORDER BY created_at DESC LIMIT 1",
                [collective_id],
            )
        )
        return rows[0]["code"] if rows else None

    def renew_code(self, collective_id: str) -> str:
        """Revoke the current code and issue a new one (members already in stay in)."""
        code = new_code()
        stamp = now_iso()
        with self.db.atomic():
            self.db.execute(
                "UPDATE collective_codes SET revoked_at = ? WHERE collective_id = ? AND revoked_at IS NULL",
                [stamp, collective_id],
            )
            self.db.execute(
                "INSERT INTO collective_codes (code, collective_id, created_at, revoked_at) VALUES (?, ?, ?, NULL)",
                [code, collective_id, stamp],
            )
        return code

    def revoke_code(self, collective_id: str) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE collective_codes SET revoked_at = ? WHERE collective_id = ? AND revoked_at IS NULL",
                [now_iso(), collective_id],
            )

    def find_code(self, code: str) -> tuple[Collective, bool] | None:
        """The collective a code belongs to and whether the code is still valid, or None if unknown."""
        rows = list(
            self.db.query(
                "SELECT c.*, k.revoked_at AS k_revoked FROM collective_codes k JOIN collectives c "
                "ON c.id = k.collective_id WHERE k.code = ?",
                [normalise_code(code)],
            )
        )
        if not rows:
            return None
        return _collective(rows[0]), rows[0]["k_revoked"] is None

    # ------------------------------------------------------------------ memberships

    def membership(self, collective_id: str, user_id: str) -> Membership | None:
        rows = list(self.db.query(_MEMBERSHIP_SELECT + "WHERE m.collective_id = ? AND m.user_id = ?", [collective_id, user_id]))
        return _membership(rows[0]) if rows else None

    def memberships(self, user_id: str, *, active_only: bool = True) -> list[Membership]:
        sql = _MEMBERSHIP_SELECT + "WHERE m.user_id = ?"
        params: list = [user_id]
        if active_only:
            sql += " AND m.status = ?"
            params.append(JOINED)
        return [_membership(r) for r in self.db.query(sql + " ORDER BY m.joined_at, m.rowid", params)]

    def record_invited(self, collective_id: str, user_id: str) -> None:
        """Someone opened the invitation (counted as « invité »); a past decline or departure is reopened."""
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO collective_members (collective_id, user_id, role, status, signed_name, counts, invited_at, "
                "joined_at, left_at) VALUES (?, ?, ?, ?, NULL, 0, ?, NULL, NULL) ON CONFLICT (collective_id, user_id) "
                "DO UPDATE SET status = excluded.status, invited_at = excluded.invited_at WHERE status IN (?, ?)",
                [collective_id, user_id, MEMBER, INVITED, now_iso(), DECLINED, LEFT],
            )

    def join(self, collective_id: str, user_id: str, signed_name: str | None) -> bool:
        """Join; the orientation counts for this collective unless it already counts for another.

        Returns whether it counts for this one.
        """
        stamp = now_iso()
        with self.db.atomic():
            counts = 0 if self._counting(user_id) else 1
            self.db.execute(
                "INSERT INTO collective_members (collective_id, user_id, role, status, signed_name, counts, invited_at, "
                "joined_at, left_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (collective_id, user_id) DO UPDATE "
                "SET status = excluded.status, signed_name = excluded.signed_name, counts = excluded.counts, "
                "joined_at = excluded.joined_at, left_at = NULL",
                [collective_id, user_id, MEMBER, JOINED, signed_name, counts, stamp, stamp],
            )
            if counts:
                note_move(self.db, user_id, collective_id)
        return bool(counts)

    def decline(self, collective_id: str, user_id: str) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE collective_members SET status = ? WHERE collective_id = ? AND user_id = ? AND status = ?",
                [DECLINED, collective_id, user_id, INVITED],
            )

    def leave(self, collective_id: str, user_id: str) -> None:
        with self.db.atomic():
            note_departure(self.db, user_id, collective_id)
            self.db.execute(
                "UPDATE collective_members SET status = ?, counts = 0, signed_name = NULL, left_at = ? "
                "WHERE collective_id = ? AND user_id = ?",
                [LEFT, now_iso(), collective_id, user_id],
            )
            self.db.execute("DELETE FROM collective_answers WHERE collective_id = ? AND user_id = ?", [collective_id, user_id])

    def set_counting(self, user_id: str, collective_id: str) -> None:
        """The person's orientation now counts for this collective, and for no other."""
        with self.db.atomic():
            previous = self.counting_for(user_id)
            if previous is not None and previous.id == collective_id:
                return
            if previous is not None:
                note_departure(self.db, user_id, previous.id)
            note_move(self.db, user_id, collective_id)
            self.db.execute("UPDATE collective_members SET counts = 0 WHERE user_id = ?", [user_id])
            self.db.execute(
                "UPDATE collective_members SET counts = 1 WHERE user_id = ? AND collective_id = ? AND status = ?",
                [user_id, collective_id, JOINED],
            )

    def counting_for(self, user_id: str) -> Collective | None:
        rows = list(self.db.query(_MEMBERSHIP_SELECT + "WHERE m.user_id = ? AND m.counts = 1 AND m.status = ?", [user_id, JOINED]))
        return _membership(rows[0]).collective if rows else None

    def _counting(self, user_id: str) -> bool:
        return bool(list(self.db.query("SELECT 1 FROM collective_members WHERE user_id = ? AND counts = 1 AND status = ?", [user_id, JOINED])))

    # ------------------------------------------------------------------ group chats

    def link_group(self, collective_id: str, group_chat: str) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE collectives SET group_chat = NULL WHERE group_chat = ?", [group_chat])
            self.db.execute("UPDATE collectives SET group_chat = ? WHERE id = ?", [group_chat, collective_id])

    def for_group(self, group_chat: str) -> Collective | None:
        rows = list(self.db.query("SELECT * FROM collectives WHERE group_chat = ?", [group_chat]))
        return _collective(rows[0]) if rows else None

    # ------------------------------------------------------------------ what the group view reads

    def headcount(self, collective_id: str) -> Headcount:
        rows = list(
            self.db.query(
                "SELECT role, status, signed_name FROM collective_members WHERE collective_id = ?", [collective_id]
            )
        )
        joined = [r for r in rows if r["status"] == JOINED]
        signed = tuple(sorted((r["signed_name"] for r in joined if r["signed_name"]), key=str.casefold))
        invited = sum(1 for r in rows if r["role"] != COORDINATOR)
        return Headcount(invited=invited, joined=len(joined), signed=signed)

    def counted_members(self, collective_id: str) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM collective_members WHERE collective_id = ? AND status = ? AND counts = 1",
            [collective_id, JOINED],
        ).fetchone()[0]

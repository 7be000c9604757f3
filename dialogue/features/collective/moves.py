"""Members who start or stop counting for a collective (join, switch, leave, /oublier).

An arrival or a departure changes the counts as much as a new answer does; the
publication counts the distinct members who moved towards its next batch
(:mod:`~dialogue.features.collective.publication`), so that the view does not move the
moment one known person joins or leaves. After /oublier, the person's moves keep no
link to them (the id is replaced by a token of the row).
"""

from __future__ import annotations

from sqlite_utils import Database


def create_moves_table(db: Database) -> None:
    db.table("collective_moves").create({"id": int, "collective_id": str, "user_id": str}, pk="id", if_not_exists=True)
    db.table("collective_moves").create_index(["collective_id", "id"], if_not_exists=True)


def note_move(db: Database, user_id: str, collective_id: str) -> None:
    db.execute("INSERT INTO collective_moves (collective_id, user_id) VALUES (?, ?)", [collective_id, user_id])


def note_departure(db: Database, user_id: str, collective_id: str | None = None) -> None:
    """``user_id`` stops counting for ``collective_id`` (``None``: wherever their answers count, frozen ones too)."""
    sql = "SELECT collective_id FROM collective_members WHERE user_id = ? AND counts = 1 AND status = 'joined'"
    params = [user_id]
    if collective_id is not None:
        sql += " AND collective_id = ?"
        params.append(collective_id)
    else:
        sql += " UNION SELECT DISTINCT collective_id FROM collective_answers WHERE user_id = ?"
        params.append(user_id)
    for (counted_for,) in db.execute(sql, params).fetchall():
        note_move(db, user_id, counted_for)


def unlink_moves(db: Database, user_id: str) -> None:
    """/oublier: the moves still count, but no longer say whose they were."""
    db.execute("UPDATE collective_moves SET user_id = 'erased:' || id WHERE user_id = ?", [user_id])


def last_move(db: Database) -> int:
    return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM collective_moves").fetchone()[0])


def movers_after(db: Database, collective_id: str, mark: int) -> set[str]:
    rows = db.execute("SELECT DISTINCT user_id FROM collective_moves WHERE collective_id = ? AND id > ?", [collective_id, mark])
    return {user_id for (user_id,) in rows}

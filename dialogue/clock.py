"""The time, in one place: UTC always, stored as ISO 8601 to the second."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

#: What the engine and the stores call to know the time (tests pass their own).
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def now_iso() -> str:
    """The current time as stored in the database."""
    return iso(utc_now())

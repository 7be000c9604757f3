"""Every delay and limit of the Telegram channel, in one injected object.

Production uses the defaults; tests pass a fast :class:`Timing` so that fault windows
(flood waits, lock waits, back-offs) shrink from seconds to milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields, replace

#: Environment variable overriding :attr:`Timing.read_timeout` (seconds).
READ_TIMEOUT_VARIABLE = "PTCE_TELEGRAM_READ_TIMEOUT"
#: Environment variable overriding any delay, as ``name=seconds`` pairs separated by commas
#: (``unavailable_wait_limit=1,watch_interval=0.1``): tests shrink a bot process's fault windows with it.
TIMING_VARIABLE = "PTCE_TELEGRAM_TIMING"


@dataclass(frozen=True, slots=True)
class Timing:
    """Delays (seconds) and limits of the channel, with production defaults."""

    #: A flood-control pause longer than this is cut short (the send is then tried again).
    max_retry_after: float = 30.0
    #: Added to Telegram's ``retry_after`` so the next try is not a hair too early.
    retry_margin: float = 0.1
    #: First back-off after a failure that happened before the request was sent, doubled up to the max.
    network_backoff: float = 0.5
    max_network_backoff: float = 30.0
    #: Client timeouts for Bot API calls (a late answer counts as « may have been delivered »).
    read_timeout: float = 5.0
    #: Long-polling wait asked from Telegram.
    poll_timeout: int = 10
    #: Pause of the intake while the backlog is full.
    backlog_pause: float = 0.5
    #: How long a turn waits for another program's write lock before the user is asked to resend.
    lock_wait_limit: float = 60.0
    #: How long a turn waits for a read-only or full database before the user is told.
    unavailable_wait_limit: float = 10.0
    #: First and longest pause between two tries of a turn that met a lock.
    first_lock_retry: float = 0.05
    max_lock_retry: float = 1.0
    #: A lock shorter than this is normal (another program's short write): not reported.
    brief_lock: float = 1.0
    #: How often the database files' identity is checked.
    watch_interval: float = 1.0
    #: How often old done updates and turn markers are pruned.
    prune_interval: float = 3600.0
    #: Pause before trying again to read or write the queue file after a storage error.
    storage_retry: float = 1.0
    #: Users each told at most once per this many seconds that nothing can be recorded.
    unavailable_notice_interval: float = 60.0
    #: After the database file vanished: time for waiting users to be told before the bot stops.
    gone_notice: float = 2.0
    #: At shutdown, requests already sent get this long to be answered.
    shutdown_grace: float = 5.0
    #: At shutdown, the last getUpdates that confirms recorded updates gets this long.
    confirm_timeout: float = 2.0
    #: Same log line at most once per this many seconds.
    log_interval: float = 30.0
    #: How often answers typed with ``ptce-bot inbox answer`` are looked for (team chat).
    team_push_interval: float = 3.0
    #: How long a stop waits for a team message already sent to be recorded (within systemd's TimeoutStopSec).
    team_stop_grace: float = 10.0
    #: How the channel waits (tests may record the waits instead).
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    #: The clock the waits are measured with.
    clock: Callable[[], float] = time.monotonic

    def with_environment(self, environ: Mapping[str, str] | None = None) -> Timing:
        """These timings with :data:`READ_TIMEOUT_VARIABLE` and :data:`TIMING_VARIABLE` applied, if set.

        A malformed or unknown entry raises ``ValueError`` (a typo must not go unnoticed).
        """
        environ = os.environ if environ is None else environ
        changes: dict[str, float] = {}
        raw = environ.get(READ_TIMEOUT_VARIABLE)
        if raw:
            changes["read_timeout"] = float(raw)
        delays = {f.name: f.type for f in fields(self) if f.name not in ("sleep", "clock")}
        for item in filter(None, (part.strip() for part in environ.get(TIMING_VARIABLE, "").split(","))):
            name, _, value = item.partition("=")
            if name.strip() not in delays:
                raise ValueError(f"{TIMING_VARIABLE} : délai inconnu « {name.strip()} »")
            changes[name.strip()] = int(value) if delays[name.strip()] == "int" else float(value)
        return replace(self, **changes) if changes else self  # type: ignore[arg-type]


#: The production timings.
PRODUCTION = Timing()

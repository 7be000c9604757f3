"""Telegram channel for the PTCE advisor (``ptce-bot telegram``).

The engine owns all dialogue state; this package only carries updates to it and its
replies back. One job per module:

- :mod:`~bot.telegram.app` — composition root: builds the application, registers every
  handler (thin callbacks: an update becomes one engine event, the replies are queued),
  and ``run`` for the command line.
- :mod:`~bot.telegram.config` — token, command-line and webhook options (no python-telegram-bot import).
- :mod:`~bot.telegram.timing` — every delay and limit of the channel, injected (:class:`Timing`).
- :mod:`~bot.telegram.logs` — secret redaction, payload dropping, rate-limited log lines.
- :mod:`~bot.telegram.engine_port` — what the channel needs from the engine (a ``Protocol``).
- :mod:`~bot.telegram.turns` — a turn run exactly once in the engine's worker thread, lock back-off.
- :mod:`~bot.telegram.dispatcher` — per-user ordering of updates.
- :mod:`~bot.telegram.intake` — long polling, the webhook's durable update queue, resume at start-up.
- :mod:`~bot.telegram.outbox` — delivery of queued replies, the request wrapper that marks them « sending ».
- :mod:`~bot.telegram.replies` — engine replies → outbox rows (split, edit or send, reply-to, topics).
- :mod:`~bot.telegram.lifecycle` — serve, drain, watch the database files, stop.
- :mod:`~bot.telegram.durable` — the SQLite file of updates and outbox rows.
- :mod:`~bot.telegram.team` — the team chat relay; :mod:`~bot.telegram.reports` — PDF reports.

How an update travels (each step survives a crash, see :mod:`bot.telegram.durable`):

1. **Intake** — the poller fetches raw updates and parses them one by one: an update the
   library cannot parse is skipped, counted and logged once without its content. The
   good ones are recorded in the ``updates`` table *before* the next ``getUpdates`` call
   confirms them to Telegram (webhook mode: before the HTTP answer).
2. **Ordering** — the dispatcher keeps one queue per Telegram user: a user's updates are
   handled one after the other, in arrival order; different users concurrently.
3. **Engine** — ``Engine.handle`` runs in a single worker thread (one writer, no lock
   contention inside the process, the event loop never blocks on SQLite). The turn's
   changes and its replies commit together (``ProgressStore.once``), so a turn is applied
   once even if the process dies right after. When another program holds the database's
   write lock, the turn fails fast and is retried with back-off while other users are
   served; after ``Timing.lock_wait_limit`` the user is asked in French to resend, and
   nothing of the turn was written. No reply is sent for a turn that was not stored.
4. **Outbox** — the replies and the update's « done » mark commit in one transaction; the
   sender then delivers each chat's rows in order. 429 and 5xx answers and connection
   failures before the request left are retried (waits bounded by
   ``Timing.max_retry_after``, per chat: one user's flood wait pauses nobody else); a
   request that may have reached Telegram (timeout after sending, connection cut) is never
   sent again, so nobody gets a reply twice.

Importing this package imports nothing from python-telegram-bot: the command line reads
its options from :mod:`bot.telegram.config` without paying for the library.
"""

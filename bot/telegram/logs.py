"""Logging of the Telegram channel: secrets redacted, users' text dropped, repeated lines limited."""

from __future__ import annotations

import logging
from typing import Any

from bot.telegram.timing import Timing

logger = logging.getLogger("bot.telegram")


class LimitedLog:
    """Log a line at most once per ``Timing.log_interval`` per key, with the count of skipped ones."""

    def __init__(self, timing: Timing) -> None:
        self._timing = timing
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def __call__(self, key: str, level: int, message: str, *args: Any) -> None:
        now = self._timing.clock()
        last = self._last.get(key)
        if last is not None and now - last < self._timing.log_interval:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        suffix = f" ({skipped} semblables non journalisés)" if skipped else ""
        logger.log(level, message + suffix, *args)


class RedactSecrets(logging.Filter):
    """Replace secrets (bot token, webhook secret) by ``***`` in every log record."""

    def __init__(self, *secrets: str | None) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if secret]

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


class DropPayloads(logging.Filter):
    """Keep users' text out of the library's logs.

    python-telegram-bot logs whole update payloads in a few places (a webhook update it
    cannot parse, at CRITICAL; every call's parameters and results, at DEBUG).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("telegram") and "data" in str(record.msg).lower() and record.args:
            record.msg = str(record.msg).split("%", 1)[0] + "<contenu omis>"
            record.args = None
        return True


def configure_logging(*secrets: str | None, level: str = "INFO") -> None:
    """Logs on stderr at ``level``, secrets redacted, no request URLs (they contain the token).

    Whatever the level, the libraries that could print users' text or the token stay
    quieter: python-telegram-bot at INFO at least, httpx/httpcore at WARNING, and
    ``transitions`` (two lines per state change) at WARNING.
    """
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(numeric)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("telegram").setLevel(max(numeric, logging.INFO))
    # The outbox logs flood waits itself, once per chat and without a traceback.
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    redact = RedactSecrets(*secrets)
    payloads = DropPayloads()
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
        handler.addFilter(payloads)

"""The advisor on a web page: a thin channel over the same engine, knowledge and SQLite store.

- :mod:`~bot.web.app` — the Starlette application: routes, forms, sessions, ``ptce-bot web``.
- :mod:`~bot.web.turns` — engine turns in one worker thread; report files built beside it.
- :mod:`~bot.web.store` — the channel's tables (sessions, messages on the page, files, resume codes).
- :mod:`~bot.web.page`, :mod:`~bot.web.markup`, :mod:`~bot.web.texts` — the HTML, escaped, in French.
- :mod:`~bot.web.security` — headers (CSP), body cap, rate limits, CSRF tokens.
- :mod:`~bot.web.config` — options and the cookie-signing secret.
- ``static/`` — the stylesheet and the small script of progressive enhancement (no build step).

Importing this package imports nothing: ``ptce-bot ask`` never loads Starlette or uvicorn.
"""

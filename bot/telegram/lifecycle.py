"""Running the bot: start (resume what was queued), serve, watch the files, stop without losing anything."""

from __future__ import annotations

import asyncio
import functools
import signal
from typing import Any

from telegram.ext import Application

from bot.telegram.channel import Channel
from bot.telegram.config import WebhookOptions
from bot.telegram.intake import ALLOWED_UPDATES, Poller, resume
from bot.telegram.isolation import supervise
from bot.telegram.logs import logger
from dialogue.storage.errors import StorageError

#: A webhook request larger than this is refused (Telegram's updates weigh a few KB).
MAX_WEBHOOK_BODY = 1_000_000

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


def limit_webhook_body(max_bytes: int) -> bool:
    """Make the webhook's web server refuse bodies over ``max_bytes`` before reading them.

    python-telegram-bot builds tornado's ``HTTPServer`` itself without a size option
    (tornado's default is 100 MB); we wrap that constructor. Private API: if it moved,
    only the reverse proxy's limit remains (``client_max_body_size``, see the README).
    """
    try:
        from telegram.ext._utils import webhookhandler
        from tornado.httpserver import HTTPServer
    except ImportError:  # pragma: no cover - webhooks extra missing
        return False
    if not hasattr(webhookhandler, "HTTPServer"):  # pragma: no cover
        return False
    webhookhandler.HTTPServer = functools.partial(HTTPServer, max_body_size=max_bytes)  # type: ignore[misc, assignment]
    return True


def resume_channel(application: AnyApplication, channel: Channel) -> tuple[int, int]:
    """At start-up: re-submit recorded updates, re-deliver queued replies (see :func:`intake.resume`)."""
    return resume(application.bot, channel.queue, channel.dispatcher.submit, channel.sender.kick)


async def serve(application: AnyApplication, channel: Channel, webhook: WebhookOptions | None = None,
                stop: asyncio.Event | None = None, *, handle_signals: bool = True) -> int:
    """Run the bot until ``stop`` is set (SIGTERM/SIGINT); returns the exit code."""
    state = channel.state
    stop = stop or asyncio.Event()
    state.stop_requested = stop
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM) if handle_signals else ():
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not the main thread
            pass
    poller: Poller | None = None
    tasks: list[asyncio.Task[None]] = []
    async with application:
        # ``async with`` does not run the builder's hooks (run_polling would): run them here.
        if application.post_init is not None:
            await application.post_init(application)
        resume_channel(application, channel)
        updater = application.updater
        if webhook is not None and updater is not None:
            limit_webhook_body(MAX_WEBHOOK_BODY)
            await updater.start_webhook(
                listen=webhook.listen, port=webhook.port, url_path=webhook.url_path,
                webhook_url=webhook.webhook_url, secret_token=webhook.secret_token,
                allowed_updates=ALLOWED_UPDATES,
            )
            logger.info("Bot Telegram en mode webhook sur %s:%s", webhook.listen, webhook.port)
        else:
            poller = Poller(application.bot, state, channel.dispatcher.submit, lambda: channel.dispatcher.waiting)
            tasks.append(asyncio.create_task(supervise("réception des messages", poller.run, state), name="ptce-poller"))
            logger.info("Bot Telegram en mode long polling")
        tasks.append(asyncio.create_task(supervise("surveillance des fichiers", functools.partial(watch, channel), state),
                                         name="ptce-watch"))
        await stop.wait()
        logger.info("Arrêt demandé : fin des envois en cours, le reste attend le prochain démarrage")
        started = loop.time()
        state.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if webhook is not None and updater is not None and updater.running:
            await updater.stop()
        await channel.dispatcher.stop()
        await channel.sender.stop()
        # The turn already in the worker thread commits (exactly once) before the store closes.
        await loop.run_in_executor(None, channel.turns.shutdown)
        if application.post_stop is not None:
            await application.post_stop(application)
        if poller is not None:
            try:
                await asyncio.wait_for(poller.confirm(), timeout=state.timing.confirm_timeout)
            except asyncio.TimeoutError:
                pass  # unconfirmed updates come back at the next start and are recognised
        logger.info("Bot arrêté en %.1f s", loop.time() - started)
    for signum in (signal.SIGINT, signal.SIGTERM) if handle_signals else ():
        try:
            loop.remove_signal_handler(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            pass
    return state.exit_code


async def watch(channel: Channel) -> None:
    """Notice a database file deleted or replaced while running; prune old turn markers."""
    timing = channel.timing
    store = channel.engine.store
    last_prune = timing.clock()
    while True:
        await timing.sleep(timing.watch_interval)
        channel.watch.check_files()
        if timing.clock() - last_prune > timing.prune_interval:
            last_prune = timing.clock()
            try:
                channel.queue.prune()
            except StorageError:
                pass  # next time
            await channel.turns.in_worker(store.prune_markers)

"""Configuration of ``ptce-bot telegram``: token, command-line options, webhook options.

Imports nothing from python-telegram-bot, so that ``ptce-bot --help`` and the other
sub-commands stay fast (the library is imported by the ``telegram`` sub-command only).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from bot.exit_codes import EXIT_USAGE as EXIT_USAGE  # a configuration error, as argparse's

TOKEN_VARIABLE = "TELEGRAM_BOT_TOKEN"
SECRET_VARIABLE = "TELEGRAM_WEBHOOK_SECRET"
#: Shape of a bot token as given by @BotFather (``<bot id>:<secret>``).
TOKEN_PATTERN = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
#: Telegram accepts 1–256 characters from this set for a webhook's secret token.
WEBHOOK_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigurationError(Exception):
    """The configuration is unusable; the French explanation was printed on stderr."""


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    listen: str
    port: int
    url_path: str
    webhook_url: str
    secret_token: str | None


def read_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The bot token from ``TELEGRAM_BOT_TOKEN``, or ``None`` after explaining on stderr."""
    environ = os.environ if environ is None else environ
    token = (environ.get(TOKEN_VARIABLE) or "").strip()
    if not token:
        print(
            "Erreur : la variable d’environnement TELEGRAM_BOT_TOKEN n’est pas définie.\n"
            "Créez un bot avec @BotFather sur Telegram, puis : "
            "export TELEGRAM_BOT_TOKEN='<jeton donné par BotFather>'",
            file=sys.stderr,
        )
        return None
    if not TOKEN_PATTERN.match(token):
        print(
            "Erreur : TELEGRAM_BOT_TOKEN n’a pas la forme d’un jeton de bot "
            "(chiffres, deux-points, puis au moins 30 lettres, chiffres, « _ » ou « - »).\n"
            "Copiez-le à nouveau depuis @BotFather (commande /token).",
            file=sys.stderr,
        )
        return None
    return token


def webhook_secret(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str | None:
    """The webhook's secret: ``--webhook-secret``, else ``TELEGRAM_WEBHOOK_SECRET``."""
    environ = os.environ if environ is None else environ
    return getattr(args, "webhook_secret", None) or environ.get(SECRET_VARIABLE) or None


def webhook_options(args: argparse.Namespace, secret: str | None) -> WebhookOptions | None:
    """The webhook to serve (``None``: long polling); :class:`ConfigurationError` if unsafe or malformed."""
    webhook_url: str | None = getattr(args, "webhook_url", None)
    if not webhook_url:
        return None
    if secret and not WEBHOOK_SECRET_PATTERN.match(secret):
        print(
            "Erreur : le secret du webhook doit compter 1 à 256 caractères parmi "
            "A-Z, a-z, 0-9, « _ » et « - ».",
            file=sys.stderr,
        )
        raise ConfigurationError("webhook secret")
    if not secret:
        if not getattr(args, "insecure_no_secret", False):
            print(
                "Erreur : le mode webhook exige un secret (--webhook-secret ou TELEGRAM_WEBHOOK_SECRET), "
                "sinon n’importe qui pourrait envoyer de faux messages au bot. "
                "Pour passer outre en connaissance de cause : --insecure-no-secret.",
                file=sys.stderr,
            )
            raise ConfigurationError("webhook without secret")
        print(
            "Attention : webhook sans secret (--insecure-no-secret) : tout appel HTTP sera accepté "
            "comme un message de Telegram.",
            file=sys.stderr,
        )
    url_path = getattr(args, "url_path", None)
    if url_path is None:
        url_path = urlparse(webhook_url).path
    return WebhookOptions(args.listen, args.port, url_path.lstrip("/"), webhook_url, secret)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ptce-bot telegram`` (the token comes from ``TELEGRAM_BOT_TOKEN``)."""
    parser.description = (
        "Lance le bot Telegram (jeton dans TELEGRAM_BOT_TOKEN). Par défaut en « long polling » ; "
        "avec --webhook-url, Telegram envoie les messages à un serveur web local."
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="INFO",
        help="niveau du journal (défaut : INFO ; le jeton et les textes des utilisateurs n’y figurent jamais)",
    )
    group = parser.add_argument_group("webhook")
    group.add_argument(
        "--webhook-url",
        metavar="URL",
        help="adresse HTTPS publique que Telegram appellera (active le mode webhook)",
    )
    group.add_argument(
        "--listen", default="127.0.0.1", help="adresse d’écoute locale (défaut : 127.0.0.1)"
    )
    group.add_argument(
        "--port", type=int, default=8443, help="port d’écoute local (défaut : 8443)"
    )
    group.add_argument(
        "--url-path",
        metavar="CHEMIN",
        help="chemin local du webhook (défaut : le chemin de --webhook-url)",
    )
    group.add_argument(
        "--webhook-secret",
        metavar="SECRET",
        help="secret vérifié à chaque appel (défaut : variable TELEGRAM_WEBHOOK_SECRET) ; obligatoire",
    )
    group.add_argument(
        "--insecure-no-secret",
        action="store_true",
        help="accepter un webhook sans secret (déconseillé : n’importe qui pourrait envoyer de faux messages)",
    )


def file_url_for(base_url: str) -> str:
    """The file URL matching a Bot API URL (``…/bot`` → ``…/file/bot``)."""
    stripped = base_url.rstrip("/")
    if stripped.endswith("/bot"):
        return stripped[: -len("bot")] + "file/bot"
    return stripped + "/file/bot"

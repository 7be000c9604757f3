"""Settings of the web page: command-line options, environment, the cookie-signing secret."""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from dialogue.storage.files import tighten, write_private

#: Environment variable holding the secret that signs session cookies (else a file beside the database).
SECRET_ENV = "PTCE_WEB_SECRET"


@dataclass(frozen=True, slots=True)
class WebSettings:
    """What the application needs besides the engine."""

    secret_key: str
    #: Address the page is reached at (``https://conseil.example.org``), for invitation links.
    public_url: str = "http://127.0.0.1:8080"
    #: CSP ``frame-ancestors`` sources: who may show the page in an iframe (``'none'``: nobody).
    frame_ancestors: str = "'none'"
    #: Cookies marked ``Secure`` (the page is served over HTTPS by a reverse proxy).
    secure_cookies: bool = False
    #: Largest request body accepted, in bytes.
    max_body: int = 16 * 1024
    #: Longest message typed, in characters.
    max_text: int = 2000
    #: Requests that change something, per session: a burst, then one every ``session_interval`` seconds.
    session_burst: int = 20
    session_interval: float = 1.0
    #: The same, per client address (several people may share one address behind a firewall).
    address_burst: int = 120
    address_interval: float = 0.1
    #: How long a session cookie lives without a visit (the progress survives closing the browser).
    session_days: int = 180

    @property
    def embeddable(self) -> bool:
        return self.frame_ancestors.strip() not in ("", "'none'")

    @property
    def invitation_base(self) -> str:
        return self.public_url.rstrip("/") + "/rejoindre/"


def secret_for(db_path: Path) -> str:
    """``$PTCE_WEB_SECRET``, or a random secret kept (0600) beside the database so sessions survive restarts."""
    from_env = os.environ.get(SECRET_ENV, "").strip()
    if from_env:
        return from_env
    path = db_path.resolve().with_name(db_path.name + ".web-secret")
    if path.exists():
        tighten(path)
        secret = path.read_text(encoding="ascii").strip()
        if secret:
            return secret
    secret = secrets.token_urlsafe(48)
    write_private(path, secret + "\n")
    return secret


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="adresse d’écoute (défaut : 127.0.0.1, derrière un proxy)")
    parser.add_argument("--port", type=int, default=8080, help="port d’écoute (défaut : 8080)")
    parser.add_argument(
        "--public-url",
        default=os.environ.get("PTCE_WEB_PUBLIC_URL"),
        help="adresse publique de la page, pour les liens d’invitation (ex. https://conseil.example.org ; $PTCE_WEB_PUBLIC_URL)",
    )
    parser.add_argument(
        "--frame-ancestors",
        default=os.environ.get("PTCE_WEB_FRAME_ANCESTORS", "'none'"),
        help="sites autorisés à afficher la page dans une iframe (CSP frame-ancestors, ex. https://partenaire.example.org)",
    )
    parser.add_argument(
        "--secure-cookies",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cookies « Secure » (défaut : oui si --public-url commence par https://)",
    )
    parser.add_argument("--session-rate", type=float, default=1.0, help="messages par seconde et par session, en continu (défaut : 1)")
    parser.add_argument("--address-rate", type=float, default=10.0, help="messages par seconde et par adresse, en continu (défaut : 10)")


def settings_from(args: argparse.Namespace, db_path: Path) -> WebSettings:
    public_url = (args.public_url or f"http://{args.host}:{args.port}").rstrip("/")
    secure = args.secure_cookies if args.secure_cookies is not None else public_url.startswith("https://")
    return WebSettings(
        secret_key=secret_for(db_path),
        public_url=public_url,
        frame_ancestors=args.frame_ancestors,
        secure_cookies=secure,
        session_interval=1.0 / max(args.session_rate, 0.01),
        address_interval=1.0 / max(args.address_rate, 0.01),
    )

"""The core's commands, available from every state, with their French descriptions.

Features add their own (see :attr:`dialogue.feature.Feature.commands`); ``Engine.commands`` lists them all.
"""

from __future__ import annotations

#: (command, description) in the order shown to users, e.g. by Telegram's set_my_commands.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Démarrer ou revenir à l’accueil"),
    ("menu", "Afficher le menu principal"),
    ("orientation", "Faire le point sur votre PTCE, pas à pas"),
    ("formes", "Guide des formes juridiques"),
    ("synthese", "Votre synthèse personnalisée"),
    ("modifier", "Changer une de vos réponses"),
    ("reprendre", "Reprendre là où vous en étiez"),
    ("progression", "Voir les étapes faites et à faire"),
    ("recommencer", "Recommencer le parcours à zéro"),
    ("glossaire", "Lexique des termes utilisés"),
    ("source", "Le document de référence"),
    ("aide", "Comment utiliser l’assistant"),
    ("oublier", "Effacer toutes vos données"),
)

#: Features' commands are listed just before this one (after the user's own journey).
FEATURES_BEFORE = "glossaire"


def with_features(extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The core's commands with the features' ones inserted at their place in the list."""
    names = {name for name, _ in extra}
    core = [(n, d) for n, d in COMMANDS if n not in names]
    at = next(i for i, (name, _) in enumerate(core) if name == FEATURES_BEFORE)
    return [*core[:at], *extra, *core[at:]]

"""The global commands, available from every state, with their French descriptions."""

from __future__ import annotations

#: (command, description) in the order shown to users, e.g. by Telegram's set_my_commands.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Démarrer ou revenir à l’accueil"),
    ("menu", "Afficher le menu principal"),
    ("orientation", "Faire le point sur votre PTCE, pas à pas"),
    ("formes", "Guide des formes juridiques"),
    ("synthese", "Votre synthèse personnalisée"),
    ("reprendre", "Reprendre là où vous en étiez"),
    ("progression", "Voir les étapes faites et à faire"),
    ("recommencer", "Recommencer le parcours à zéro"),
    ("collectif", "Faire l’orientation avec votre collectif"),
    ("rejoindre", "Rejoindre un collectif avec un code"),
    ("glossaire", "Lexique des termes utilisés"),
    ("source", "Le document de référence"),
    ("aide", "Comment utiliser l’assistant"),
    ("oublier", "Effacer toutes vos données"),
)

COMMAND_NAMES: frozenset[str] = frozenset(name for name, _ in COMMANDS)

"""What the web page says outside the engine's replies (French), and its small error pages."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

TITLE = "Conseiller PTCE"
TAGLINE = "Créer ou faire vivre un Pôle territorial de coopération économique, avec le document de l’Institut Godin."
WELCOME = (
    "Bonjour ! Je réponds à vos questions sur les PTCE et je vous aide à faire le point, pas à pas. "
    "Commencez par le menu, ou écrivez votre question ci-dessous."
)
START_BUTTON = "Commencer"
INPUT_LABEL = "Votre message"
INPUT_HINT = "Une question, un mot du glossaire, ou une commande comme /progression."
SEND_BUTTON = "Envoyer"
COMMANDS_TITLE = "Toutes les commandes"
RESUME_TITLE = "Reprendre sur un autre appareil"
RESUME_EXPLAIN = (
    "Affichez un code ici, puis saisissez-le sur l’autre appareil (ordinateur, téléphone) : "
    "vous y retrouverez votre progression. Le code sert une seule fois et expire au bout de 15 minutes."
)
RESUME_SHOW = "Afficher un code"
RESUME_CODE_LABEL = "Code reçu sur un autre appareil"
RESUME_USE = "Reprendre avec ce code"
RESUME_CODE_SHOWN = "Votre code : **{code}** — saisissez-le sur l’autre appareil dans les 15 minutes (une seule fois)."
RESUME_DONE = "C’est fait : vous reprenez ici la conversation commencée sur votre autre appareil."
RESUME_BAD = "Ce code n’est pas valable (déjà utilisé, expiré ou mal recopié). Affichez-en un nouveau sur l’autre appareil."
RESUME_NOTHING = "Rien à reprendre pour l’instant : commencez la conversation, puis revenez ici."
PRIVACY_TITLE = "Vos données"
WEB_PRIVACY = (
    "**Sur cette page**\n"
    "- Un seul cookie, celui de votre session (signé, illisible par les scripts), pour vous reconnaître ; aucun traceur, "
    "rien n’est demandé à un autre site.\n"
    "- Les derniers messages affichés et vos documents PDF sont gardés avec votre progression, "
    "dans le même fichier ; /oublier les efface aussi, sur tous vos appareils."
)
INVITATION = "Vous avez reçu une invitation à rejoindre un collectif (code **{code}**)."
INVITATION_BUTTON = "Ouvrir l’invitation"
INVITATION_BAD = "Ce lien d’invitation n’est pas valable. Demandez un nouveau lien à la personne qui coordonne le collectif."
DOWNLOAD = "Télécharger : {caption}"
YOU = "Vous"
ADVISOR = "Conseiller"
SKIP_LINK = "Aller à la zone de saisie"
CONVERSATION = "Conversation"
NEW_REPLIES = "Nouvelle réponse du conseiller."

EXPIRED = "La page a expiré (ou a été ouverte ailleurs). Rechargez-la, puis recommencez."
RATE_LIMITED = "Trop de messages d’un coup. Patientez {seconds} seconde(s), puis réessayez."
TOO_LARGE = "Message trop long. Raccourcissez-le (2 000 caractères au plus), puis réessayez."
UNAVAILABLE = "Le service est momentanément indisponible. Réessayez dans un moment : rien de ce que vous avez fait n’est perdu."
NOT_FOUND = "Cette page n’existe pas."
BAD_FORM = "Ce formulaire n’est pas valable. Rechargez la page, puis recommencez."
FILE_GONE = "Ce document n’est plus disponible. Redemandez-le dans la conversation."
BACK = "Revenir à la conversation"


def error_page(status: int, text: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """A short French page for a refused request, with a way back (also read by the page's script)."""
    body = (
        "<!doctype html><html lang='fr'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(TITLE)}</title><link rel='stylesheet' href='/static/chat.css'></head>"
        f"<body><main id='contenu' class='error'><h1>{escape(TITLE)}</h1>"
        f"<p id='erreur' role='alert'>{escape(text)}</p><p><a href='/'>{escape(BACK)}</a></p></main></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store", **(headers or {})})

"""What the channel itself tells users (in French); everything else comes from the engine."""

UNSUPPORTED_TEXT = (
    "Je ne comprends que les messages écrits et les boutons. "
    "Écrivez votre question, ou tapez /menu pour voir ce que je propose."
)
ERROR_TEXT = "Désolé, un problème technique est survenu. Réessayez dans un instant ou tapez /menu."
BUSY_TEXT = (
    "Désolé, je n’ai pas pu enregistrer votre dernier message : la base de données est occupée. "
    "Renvoyez-le dans un instant, s’il vous plaît."
)
UNAVAILABLE_TEXT = (
    "Le service est momentanément indisponible : votre dernier message n’a pas pu être enregistré. "
    "Renvoyez-le dans quelques minutes, s’il vous plaît."
)
DELAYED_TEXT = (
    "Le service est momentanément indisponible : votre message sera traité dès que possible, "
    "inutile de le renvoyer."
)
#: Sent in place of an empty reply (Telegram refuses empty messages).
EMPTY_TEXT = "…"
#: A document whose upload timed out: it may have arrived, it is not sent twice.
DOCUMENT_UNCERTAIN_TEXT = (
    "Le document a peut-être mis du temps à arriver. S’il ne vous est pas parvenu, redemandez-le dans un instant."
)
PICTURE_FAILED_TEXT = "Désolé, l’image n’a pas pu être envoyée ; le document PDF contient la même figure."

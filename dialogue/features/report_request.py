"""The « Recevoir le document (PDF) » exchange: asking for the PTCE's name, then requesting the report.

Pure, like the engine: it returns replies carrying a
:class:`~dialogue.types.ReportRequest`; each channel builds the files with the
``report`` package. The name is asked once and kept in the user's context
(``/oublier`` erases it with the rest).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from dialogue.storage.progress import UserRecord
from dialogue.types import Button, Reply, ReportRequest
from knowledge.text import normalise

REPORT_PAYLOAD = "pdf"
NO_NAME_PAYLOAD = "pdfn"
REPORT_BUTTON = Button("Recevoir le document (PDF)", REPORT_PAYLOAD)
NAME_KEY = "ptce_name"
PENDING_KEY = "awaiting_ptce_name"
NAME_MAX = 80

ASK_NAME = (
    "Quel nom donner à votre PTCE sur le document ? Écrivez-le simplement, "
    "ou appuyez sur « Passer » pour un document sans nom."
)
TOO_LONG = f"Ce nom est un peu long ({NAME_MAX} caractères au plus). Quel nom donner à votre PTCE sur le document ?"
NOTHING_YET = (
    "Vous n’avez encore répondu à aucune question : il n’y a rien à mettre dans le document. "
    "Faites d’abord le point avec l’orientation, puis demandez le document."
)
SENT = (
    "Voici votre synthèse en PDF, avec l’image de votre profil. Vous pouvez la transmettre "
    "à votre conseil d’administration, à vos financeurs ou à votre collectif."
)

#: Free text asking for the document: « pdf » alone, or a thing (synthèse, document…) with a way to get it.
_REPORT_WORDS = frozenset({"pdf"})
_REPORT_THINGS = ("synthese", "document", "rapport", "compte rendu")
#: The reference document itself (/source), not the user's synthesis.
_REFERENCE_WORDS = frozenset({"godin", "reference", "source", "institut"})
_REPORT_VERBS = frozenset(
    {
        "envoie", "envoyer", "envoyez", "envoi", "recevoir", "telecharger", "imprimer", "imprimable",
        "partager", "exporter", "mail", "email", "courriel", "transmettre",
    }
)


def wants_report(plain: str) -> bool:
    """``plain`` is normalised text (see :func:`knowledge.text.normalise`)."""
    words = set(plain.split())
    if words & _REFERENCE_WORDS:
        return False
    if words & _REPORT_WORDS:
        return True
    return any(thing in plain for thing in _REPORT_THINGS) and bool(words & _REPORT_VERBS)


def _clean_name(text: str) -> str:
    return " ".join("".join(ch for ch in text if ch.isprintable()).split())


def report_replies(
    record: UserRecord,
    question_ids: Collection[str],
    *,
    day: date,
    kind: str,
    typed_name: str | None = None,
    skip_words: Collection[str] = (),
    menu: Button | None = None,
) -> list[Reply]:
    """What the user reads after asking for the document (button, free text, or their PTCE's name)."""
    closing = ((menu,),) if menu else ()
    if not any(record.answers.get(key) is not None for key in question_ids):
        start = Button("Commencer l’orientation", "f:orientation")
        return [Reply(NOTHING_YET, ((start,), *closing))]
    replies: list[Reply] = []
    if typed_name is not None:
        name = _clean_name(typed_name)
        if normalise(name) in skip_words:
            name = ""
        if len(name) > NAME_MAX:
            record.context[PENDING_KEY] = True
            return [Reply(TOO_LONG, ((Button("Passer", NO_NAME_PAYLOAD),),))]
        record.context[NAME_KEY] = name
        replies.append(Reply(f"C’est noté : « {name} » figurera sur le document." if name else "D’accord, le document ne portera pas de nom."))
    elif NAME_KEY not in record.context:
        record.context[PENDING_KEY] = True
        return [Reply(ASK_NAME, ((Button("Passer", NO_NAME_PAYLOAD),),))]
    request = ReportRequest(
        kind=kind,
        answers={key: value for key, value in record.answers.items() if key in question_ids},
        day=day,
        ptce_name=record.context.get(NAME_KEY, ""),
    )
    replies.append(Reply(SENT, closing, attachment=request))
    return replies

"""The « Recevoir le document (PDF) » exchange: asking for the PTCE's name, then requesting the report.

Pure, like the engine: it returns replies carrying a
:class:`~dialogue.types.ReportRequest`; each channel builds the files with the
``report`` package. The name is asked once and kept in the user's context
(``/oublier`` erases it with the rest).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from dialogue.buttons import MENU_BUTTON
from dialogue.compiled import FORMES
from dialogue.core import Core
from dialogue.feature import BaseFeature
from dialogue.flows.runner import REPORT_BUTTON, REPORT_PAYLOAD
from dialogue.payloads import Payload
from dialogue.storage.progress import UserRecord
from dialogue.turn import Turn
from dialogue.types import Button, ChannelSettings, Choose, Event, Reply, ReportRequest, Say
from knowledge.text import normalise

__all__ = ["REPORT_BUTTON", "REPORT_PAYLOAD", "ReportFeature", "report_replies", "wants_report"]

NO_NAME_PAYLOAD = "pdfn"
#: This feature's namespace in the conversation context: ``name`` and ``awaiting``.
NAMESPACE = "report"
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
    state = record.context.feature(NAMESPACE)
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
            state["awaiting"] = True
            return [Reply(TOO_LONG, ((Button("Passer", NO_NAME_PAYLOAD),),))]
        state["name"] = name
        replies.append(Reply(f"C’est noté : « {name} » figurera sur le document." if name else "D’accord, le document ne portera pas de nom."))
    elif "name" not in state:
        state["awaiting"] = True
        return [Reply(ASK_NAME, ((Button("Passer", NO_NAME_PAYLOAD),),))]
    request = ReportRequest(
        kind=kind,
        answers={key: value for key, value in record.answers.items() if key in question_ids},
        day=day,
        ptce_name=state.get("name", ""),
    )
    replies.append(Reply(SENT, closing, attachment=request))
    return replies


def ptce_name(record: UserRecord) -> str:
    """The name the user gave their PTCE for the document (« » if none)."""
    name = record.context.features.get(NAMESPACE, {}).get("name", "")
    return name if isinstance(name, str) else ""


class ReportFeature(BaseFeature):
    name = NAMESPACE
    payload_kinds = frozenset({REPORT_PAYLOAD, NO_NAME_PAYLOAD})

    def __init__(self) -> None:
        self._core: Core | None = None

    def bind(self, core: Core, settings: ChannelSettings) -> None:
        self._core = core

    def on_event(self, turn: Turn, event: Event) -> list[Reply] | None:
        # The PTCE's name for the PDF is the next free text only; anything else cancels the question.
        awaiting = turn.record.context.feature(NAMESPACE).pop("awaiting", None)
        if isinstance(event, Say):
            if awaiting:
                return self._request(turn, typed_name=event.text)
            if wants_report(normalise(event.text)):
                return self._request(turn)
        if isinstance(event, Choose):
            payload = Payload.decode(event.payload)
            if payload.kind in self.payload_kinds and not payload.args:
                return self._request(turn, typed_name="" if payload.kind == NO_NAME_PAYLOAD else None)
        return None

    def _request(self, turn: Turn, typed_name: str | None = None) -> list[Reply]:
        assert self._core is not None
        core, record = self._core, turn.record
        in_flow = core.runner.in_flow(turn.state)
        replies = report_replies(
            record,
            core.knowledge.question_flow,
            day=turn.now.date(),
            kind=FORMES if record.flow == FORMES else "synthesis",
            typed_name=typed_name,
            skip_words=core.knowledge.talk.words["skip_words"],
            menu=None if in_flow else MENU_BUTTON,
        )
        if in_flow and not record.context.feature(NAMESPACE).get("awaiting"):
            replies.append(core.runner.question(record, turn.state))  # back to the step in progress
        return replies


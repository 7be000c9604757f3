"""What the channel needs to build a collective's group view as a PDF and a picture."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dialogue.features.collective.aggregation import GroupProfile, GroupSynthesis, QuestionSpread
from dialogue.types import Attachment
from knowledge.debate import DebatePoint


@dataclass(frozen=True, slots=True)
class GroupReportRequest(Attachment):
    """Asks the channel to build the group view of a collective as a PDF and a picture.

    The collective flow checks who asks when the button is pressed and takes this
    snapshot then (counts only, never an individual answer); the channel builds the
    files from it off the event loop, as for :class:`ReportRequest`.
    """

    DOCUMENT_CAPTION = "La vue de groupe de votre collectif (PDF)"
    PICTURE_CAPTION = "La vue de groupe au regard des listes du document — des décomptes, pas un score."
    FAILED = (
        "Désolé, le document n’a pas pu être préparé. La vue de groupe reste disponible ici avec /collectif ; "
        "réessayez dans un moment."
    )

    collective_name: str
    coordinator_name: str
    closed: bool
    profile: GroupProfile
    synthesis: GroupSynthesis
    debate: tuple[tuple[DebatePoint, QuestionSpread], ...]
    signed: tuple[str, ...]
    day: date
    kind: str = "group"

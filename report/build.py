"""Build the report's two files from a :class:`~dialogue.types.ReportRequest`.

Called by every channel (terminal, Telegram, ``ptce-bot export``), never by the
engine itself: the engine only asks for a report.
"""

from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path

from dialogue.features.collective.requests import GroupReportRequest
from dialogue.storage.files import write_private
from dialogue.types import Attachment, ReportRequest
from knowledge.loader import KnowledgeBase
from report.content import NOTHING_TO_REPORT, EmptyReport, build_content, has_answers
from report.files import ReportFiles, unique_stamp
from report.profile import layout, load_profile, render_png

PROFILE_TITLE = "Votre profil au regard des listes du document"

__all__ = ["NOTHING_TO_REPORT", "EmptyReport", "ReportFiles", "build_report", "file_names", "write_report"]


def file_names(day: date, stamp: str | None = None) -> tuple[str, str]:
    """``synthese-ptce-AAAA-MM-JJ-HHMMSS-xxxx.pdf`` and the matching picture name (a new stamp each call)."""
    stamp = stamp or unique_stamp()
    return f"synthese-ptce-{day.isoformat()}-{stamp}.pdf", f"profil-ptce-{day.isoformat()}-{stamp}.png"


def build_report(kb: KnowledgeBase, request: Attachment) -> ReportFiles:
    """The PDF and the PNG of the profile; raises :class:`EmptyReport` when nothing was answered.

    A :class:`GroupReportRequest` gives a collective's group view instead (see :mod:`report.group`).
    """
    if isinstance(request, GroupReportRequest):
        from report.group import build_group_report

        return build_group_report(kb, request)
    if not isinstance(request, ReportRequest):
        raise TypeError(f"no report for {type(request).__name__}")
    from dialogue.flows.synthesis import normalise_answers

    # Answers stored by older flows (a venue stored as one value, merged questions) read as today's.
    answers = normalise_answers(kb.synthesis.questions, request.answers)
    if not has_answers(answers):
        raise EmptyReport(NOTHING_TO_REPORT)
    content = build_content(kb, answers, kind=request.kind, ptce_name=request.ptce_name, day=request.day)
    title = f"{PROFILE_TITLE} — {content.ptce_name}" if content.ptce_name else PROFILE_TITLE
    if len(title) > 70:
        title = PROFILE_TITLE
    shapes = layout(load_profile(), answers, title)
    from report.pdf import render_pdf  # fpdf2: only when a report is really built

    pdf = render_pdf(content, shapes)
    png = render_png(shapes)
    pdf_name, png_name = file_names(request.day)
    return ReportFiles(pdf, png, pdf_name, png_name)


def write_report(kb: KnowledgeBase, request: Attachment, directory: Path) -> tuple[Path, Path]:
    """Write both files into ``directory`` (created if needed); returns their paths."""
    files = build_report(kb, request)
    directory.mkdir(parents=True, exist_ok=True)
    pdf_path, png_path = directory / files.pdf_name, directory / files.png_name
    while pdf_path.exists() or png_path.exists():  # never overwrite an earlier report
        stem = f"-{secrets.token_hex(2)}"
        pdf_path = pdf_path.with_stem(pdf_path.stem + stem)
        png_path = png_path.with_stem(png_path.stem + stem)
    write_private(pdf_path, files.pdf)  # a person's answers: owner-only
    write_private(png_path, files.png)
    return pdf_path, png_path

"""The two files of a report, as bytes with their names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReportFiles:
    pdf: bytes
    png: bytes
    pdf_name: str
    png_name: str

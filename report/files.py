"""The two files of a report, as bytes with their names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReportFiles:
    pdf: bytes
    png: bytes
    pdf_name: str
    png_name: str


def unique_stamp() -> str:
    """« 143205-a3f9 »: the time and four random hex digits, so that two reports never share a name."""
    import secrets
    from datetime import datetime

    return f"{datetime.now().strftime('%H%M%S')}-{secrets.token_hex(2)}"

"""Writing the PDF report and the profile picture to disk (terminal chat and ``ptce-bot export``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from dialogue.storage.progress import default_db_path
from dialogue.types import Attachment


def default_directory(db: str | Path | None) -> Path:
    """Next to the database: where the user's progress already lives."""
    return Path(db or default_db_path()).resolve().parent


def write_files(kb, request: Attachment, directory: Path, out: TextIO | None = None) -> tuple[Path, Path] | None:
    """Build and write both files, print their paths; ``None`` (explained on ``out``) when impossible."""
    from report import EmptyReport, write_report

    out = out or sys.stdout
    print("Préparation du document…", file=out, flush=True)  # the first one takes a second or two
    try:
        pdf, png = write_report(kb, request, directory)
    except EmptyReport as error:
        print(str(error), file=out)
        return None
    except OSError as error:
        print(f"Impossible d’écrire le document dans {directory} : {error.strerror or error}", file=out)
        return None
    print(f"Document PDF : {pdf}", file=out)
    picture = "Image de la vue de groupe" if request.kind == "group" else "Image du profil"
    print(f"{picture} : {png}", file=out)
    return pdf, png

"""Render a sample report page for the README: ``python -m report.sample docs/report-page.png``.

The PDF is built exactly as for a user (answers of a fictional PTCE that went through
both flows), then one page is rasterised with ``pdftoppm`` (Debian's poppler-utils).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

SAMPLE_NAME = "Pôle des Coopérations du Val d’Œuvre"
#: A user who went through both flows: the longest report (all sections, the comparison table).
SAMPLE_ANSWERS = {
    "typologie": "filiere",
    "logiques": ["reseau", "accompagnement", "ingenierie"],
    "marqueurs": ["besoins", "pluralite", "structuration", "implication", "projets", "essaimage"],
    "echelle": "plusieurs_epci",
    "disparites": ["epci_differents", "rural_urbain"],
    "diagnostic": "partage",
    "noyau_dur": "oui",
    "diversite": "forte",
    "espaces": ["noyau_dur", "pilotage", "thematiques", "projets"],
    "forme_actuelle": "association",
    "besoins_formalisation": ["lisibilite", "economique"],
    "volonte_commune": "oui",
    "pression_financeurs": "non",
    "solidite_collectif": "solide",
    "fonctions": ["coordination", "animation"],
    "financements": ["region", "ami", "recettes"],
    "projet_emblematique": "oui",
    "lieu": ["tiers_lieu", "collectivite"],
    "innovation_sociale": "en_cours",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report.sample")
    parser.add_argument("output", type=Path, help="PNG file to write")
    parser.add_argument("--page", type=int, default=2, help="page to render (default: 2, the profile picture)")
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args(argv)

    from dialogue.types import ReportRequest
    from knowledge.loader import load_knowledge
    from report import build_report

    answers = {key: value if isinstance(value, str) else list(value) for key, value in SAMPLE_ANSWERS.items()}
    files = build_report(load_knowledge(), ReportRequest("formes", answers, date(2026, 1, 15), SAMPLE_NAME))
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / files.pdf_name
        pdf.write_bytes(files.pdf)
        stem = Path(folder) / "page"
        try:
            subprocess.run(
                ["pdftoppm", "-png", "-r", str(args.dpi), "-f", str(args.page), "-l", str(args.page), "-singlefile", str(pdf), str(stem)],
                check=True,
            )
        except FileNotFoundError:
            print("pdftoppm est introuvable : installez poppler-utils (apt-get install poppler-utils).", file=sys.stderr)
            return 1
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_bytes(stem.with_suffix(".png").read_bytes())
    print(f"Page {args.page} du rapport d’exemple écrite dans {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

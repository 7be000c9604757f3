"""Lay the report out on A4 pages with fpdf2 (imported by :mod:`report.build` only when needed)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from report.content import ReportContent, french_spacing
from report.profile import Shape, draw_on_pdf

FONT = "DejaVu"
MARGIN = 12.0
BODY = 8.4
LINE = 3.7
GREY = (80, 80, 80)
INK = (27, 42, 65)


@lru_cache(maxsize=1)
def font_files() -> dict[str, Path]:
    """DejaVu Sans, shipped with matplotlib: full French coverage (« » œ ’, non-breaking spaces)."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {
        "": folder / "DejaVuSans.ttf",
        "B": folder / "DejaVuSans-Bold.ttf",
    }


class ReportPDF(FPDF):
    def __init__(self, content: ReportContent, shapes: list[Shape]) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.content = content
        self.pending_picture: list[Shape] | None = shapes
        for style, path in font_files().items():
            self.add_font(FONT, style, str(path))
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=20)
        self.set_title(content.title)
        self.set_author("Conseiller PTCE")
        self.set_subject(content.reference)
        self.set_lang("fr-FR")
        self.set_creator("ptce-advisor")
        self.set_producer("ptce-advisor")

    def header(self) -> None:
        """The profile picture floats to the top of page 2, whatever text flows around it."""
        if self.page_no() == 2 and self.pending_picture:
            height = draw_on_pdf(self, self.pending_picture, MARGIN - 5, MARGIN, FONT)
            self.pending_picture = None
            self.set_y(MARGIN + height + 4)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(FONT, size=7)
        self.set_text_color(70, 70, 70)
        self.cell(0, 3.6, self.content.footer, align="C", new_x="LMARGIN", new_y="NEXT")
        self.cell(0, 3.6, f"Page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0, 0, 0)

    # ------------------------------------------------------------------ building blocks

    def heading(self, text: str, size: float = 13) -> None:
        if self.will_page_break(22):
            self.add_page()
        self.ln(2)
        self.set_font(FONT, "B", size)
        self.set_text_color(*INK)
        self.multi_cell(0, size * 0.48, french_spacing(text), align="L", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.ln(0.8)

    def paragraph(self, text: str, *, size: float = BODY, style: str = "", grey: bool = False) -> None:
        self.set_font(FONT, style, size)
        if grey:
            self.set_text_color(*GREY)
        self.multi_cell(0, LINE, french_spacing(text), markdown=True, align="L", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.ln(1)

    def item(self, marker: str, text: str, *, size: float = BODY, indent: float = 6) -> None:
        """A list item: the marker in the margin, the text wrapped under itself."""
        if self.will_page_break(LINE * 2):
            self.add_page()
        self.set_font(FONT, "", size)
        top = self.get_y()
        self.set_x(self.l_margin)
        self.cell(indent, LINE, marker)
        self.set_xy(self.l_margin + indent, top)
        self.multi_cell(0, LINE, french_spacing(text), markdown=True, align="L", new_x="LMARGIN", new_y="NEXT")
        self.ln(0.6)

    def cited(self, marker: str, text: str, citation: str) -> None:
        self.item(marker, f"{text} ({citation})")


def _title_page(pdf: ReportPDF, content: ReportContent) -> None:
    pdf.add_page()
    pdf.ln(14)
    pdf.set_font(FONT, "B", 22)
    pdf.set_text_color(*INK)
    pdf.multi_cell(0, 10, content.title, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(3)
    pdf.set_font(FONT, "", 11)
    pdf.cell(0, 6, f"Établie le {content.date_text}", new_x="LMARGIN", new_y="NEXT")
    if content.legal is not None:
        pdf.cell(0, 6, "avec le guide des formes juridiques", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.paragraph(f"**Document de référence**\u202f: {content.reference}", size=9.5)
    pdf.paragraph(content.intro, size=9.5, grey=True)
    pdf.heading("L’essentiel")
    for line in content.short:
        if line.startswith("- "):
            pdf.item("•", line[2:])
        else:
            pdf.paragraph(line)
    pdf.paragraph(
        "Suivent l’image de votre profil, le détail de chaque étape, les prochaines étapes, "
        "les points de vigilance et toutes vos réponses.",
        size=8.5,
        grey=True,
    )


def _synthesis_pages(pdf: ReportPDF, content: ReportContent) -> None:
    pdf.heading("Synthèse détaillée", 15)
    for number, section in enumerate(content.sections, start=1):
        pdf.heading(f"{number}. {section.title}", 11.5)
        pdf.set_font(FONT, "", 8)
        pdf.set_text_color(*GREY)
        pdf.cell(0, 4, section.citation, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(1)
        if section.recommendation:
            pdf.paragraph(f"Piste qui ressort de vos réponses\u202f: **{section.recommendation}**")
        for line in section.lines:
            pdf.item("•", line)
        if section.note:
            pdf.paragraph(section.note, size=8.2, grey=True)
    if content.next_steps:
        pdf.heading("Prochaines étapes")
        for number, step in enumerate(content.next_steps, start=1):
            pdf.cited(f"{number}.", step.text, step.citation)
    if content.vigilance:
        pdf.heading("Points de vigilance")
        for point in content.vigilance:
            pdf.cited("⚠", point.text, point.citation)


def _legal_pages(pdf: ReportPDF, content: ReportContent) -> None:
    legal = content.legal
    if legal is None:
        return
    pdf.heading("Guide des formes juridiques")
    if legal.recommendation:
        pdf.paragraph(f"Piste qui ressort de vos réponses\u202f: **{legal.recommendation}** ({legal.citation})")
    else:
        pdf.paragraph("Vos réponses ne suffisent pas à dégager une piste : voici la comparaison des formes décrites dans le document.")
    if pdf.will_page_break(110):  # keep the table with its title
        pdf.add_page()
    pdf.heading(f"{legal.table_title} — {legal.citation}", 10.5)
    headings = list(legal.columns)
    if legal.recommended_column is not None:
        headings[legal.recommended_column] += " (votre piste)"
    pdf.set_font(FONT, "", 7.1)
    bold = FontFace(emphasis="BOLD")
    with pdf.table(
        col_widths=(22, 54, 55, 55),
        line_height=3.4,
        text_align="LEFT",
        headings_style=FontFace(emphasis="BOLD", fill_color=(225, 229, 236)),
        padding=1.2,
        cell_fill_mode="NONE",
    ) as table:
        header = table.row()
        header.cell("")
        for label in headings:
            header.cell(label)
        for criterion, cells in legal.rows:
            row = table.row()
            row.cell(criterion, style=bold)
            for cell in cells:
                row.cell(cell)
    pdf.ln(2)


def _answers_pages(pdf: ReportPDF, content: ReportContent) -> None:
    pdf.heading("Vos réponses, question par question")
    for flow_title, steps in content.answers:
        pdf.heading(flow_title, 11)
        for step in steps:
            for answer in step.answers:
                value = f"**{answer.answer}**" if answer.answered else answer.answer
                pdf.item("–", f"{answer.question} → {value}", size=8, indent=4)


def render_pdf(content: ReportContent, shapes: list[Shape]) -> bytes:
    pdf = ReportPDF(content, shapes)
    _title_page(pdf, content)
    _synthesis_pages(pdf, content)
    if content.legal is not None:
        _legal_pages(pdf, content)
    _answers_pages(pdf, content)
    if pdf.pending_picture:  # everything fitted on the first page
        pdf.add_page()
    return bytes(pdf.output())

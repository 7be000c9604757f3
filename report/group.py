"""The group view of a collective (« Regards croisés ») as a PDF and a picture.

Built from a :class:`~dialogue.types.GroupReportRequest`: counts only. The
picture reuses ``profile.yaml``: for each item, a bar shows how the members who
started the orientation split between present / partly / absent / no answer.
Below :data:`~dialogue.features.collective.aggregation.MIN_ANSWERS` answers to the item's question,
no bar is drawn: the picture says « moins de 3 réponses ». fpdf2 and matplotlib
are imported only when the files are built.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import date
from typing import cast

from dialogue.features.collective.aggregation import AGREEMENT_THRESHOLD, MIN_ANSWERS, GroupProfile, QuestionSpread
from dialogue.features.collective.requests import GroupReportRequest
from knowledge.flows import NEXT_STEPS_SECTION
from knowledge.loader import KnowledgeBase
from report.content import french_date, french_spacing, printable
from report.profile import FIGURE_SIZE, GREY, INK, Item, Label, ProfileSpec, Rule, Status, load_profile, rgb

TITLE = "Vue de groupe"
PICTURE_TITLE = "Le collectif au regard des listes du document"
TOO_FEW = f"moins de {MIN_ANSWERS} réponses"
CONTESTED = "⚖"  # without the emoji variation selector: DejaVu draws it as text, printable in black
CAPTION = (
    "Chaque barre compte les membres qui ont commencé le parcours : noir = l’élément est présent d’après leur "
    "réponse, gris = en partie, blanc = absent, hachuré clair = sans réponse. Ce ne sont que des décomptes, "
    f"ni une note ni un score ; aucune barre n’est tracée pour une question qui a {TOO_FEW}."
)
#: Fill of each part of a bar, readable in black and white (grey levels, absent stays white).
FILLS = {Status.PRESENT: INK, Status.PARTLY: "#8f8f8f", Status.ABSENT: "#ffffff", Status.UNANSWERED: "#dcdcdc"}
BAR_WIDTH = 0.95  # inches
BAR_HEIGHT = 0.13
ROW = 0.215


@dataclass(frozen=True, slots=True)
class ItemCounts:
    present: int
    partly: int
    absent: int
    unanswered: int

    @property
    def total(self) -> int:
        return self.present + self.partly + self.absent + self.unanswered

    def parts(self) -> tuple[tuple[Status, int], ...]:
        return (
            (Status.PRESENT, self.present),
            (Status.PARTLY, self.partly),
            (Status.ABSENT, self.absent),
            (Status.UNANSWERED, self.unanswered),
        )


def item_counts(item: Item, spread: QuestionSpread | None, started: int) -> ItemCounts | None:
    """How many members have the item present, partly, absent, or did not answer; None below the threshold."""
    if spread is None or not spread.enough:
        return None
    counts = {option.id: option.count for option in spread.options}
    if item.option is not None:
        present, partly = counts.get(item.option, 0), 0
    else:
        present = sum(counts.get(o, 0) for o in item.present)
        partly = sum(counts.get(o, 0) for o in item.partly)
    absent = spread.answered - present - partly
    return ItemCounts(present, partly, absent, max(started - spread.answered, 0))


# --------------------------------------------------------------------------- picture


@dataclass(frozen=True, slots=True)
class Bar:
    """A stacked bar whose top-left corner is (x, y), in inches; ``counts`` None draws the « too few » frame."""

    x: float
    y: float
    counts: ItemCounts | None


GroupShape = Bar | Label | Rule


def group_layout(spec: ProfileSpec, profile: GroupProfile, title: str) -> list[GroupShape]:
    width, _ = FIGURE_SIZE
    started = profile.participation.answering
    shapes: list[GroupShape] = [Label(0.2, 0.4, french_spacing(title), 12, bold=True, colour=INK)]
    x = 0.2
    for status in Status:
        legend = ItemCounts(*(1 if s is status else 0 for s in Status))
        shapes.append(Bar(x, 0.62, legend))
        shapes.append(Label(x + 0.3, 0.62 + BAR_HEIGHT / 2 + 0.04, status.value, 8))
        x += 1.45
    shapes.append(Label(0.2, 0.92, french_spacing(f"Membres ayant commencé le parcours : {started}"), 7.6, colour=GREY))
    shapes.append(Rule(0.2, 1.0, width - 0.2, 1.0))
    heights = [len(theme.items) + 1.6 for theme in spec.themes]
    split, running = len(spec.themes), 0.0
    for index, height in enumerate(heights):
        if running + height / 2 > sum(heights) / 2:
            split = index
            break
        running += height
    bottom = 1.05
    for column, themes in enumerate((spec.themes[:split], spec.themes[split:])):
        left = 0.2 + column * (width / 2)
        y = 1.3
        for theme in themes:
            shapes.append(Label(left, y, french_spacing(f"{theme.title} (chap.\u202f{theme.chapter})"), 8.6, bold=True, colour=INK))
            y += 0.09
            for item in theme.items:
                counts = item_counts(item, profile.spread(item.question), started)
                shapes.append(Bar(left, y, counts))
                baseline = y + BAR_HEIGHT / 2 + 0.04
                if counts is None:  # said inside the empty frame, so long labels keep their room
                    shapes.append(Label(left + 0.05, baseline - 0.01, french_spacing(TOO_FEW), 5.6, colour=GREY))
                    label = item.label
                else:
                    label = f"{item.label} — {counts.present}/{counts.total}"
                shapes.append(Label(left + BAR_WIDTH + 0.08, baseline, french_spacing(label), 7.2))
                y += ROW
            y += 0.3
        bottom = max(bottom, y - 0.1)
    shapes.append(Rule(0.2, bottom, width - 0.2, bottom))
    for number, line in enumerate(textwrap.wrap(french_spacing(CAPTION), 118, break_on_hyphens=False)):
        shapes.append(Label(0.2, bottom + 0.25 + number * 0.16, line, 7.4))
    return shapes


def _segments(bar: Bar) -> list[tuple[float, float, Status]]:
    """(x, width, status) of each non-empty part, in inches."""
    counts = bar.counts
    if counts is None or counts.total == 0:
        return []
    result, x = [], bar.x
    for status, count in counts.parts():
        if count:
            part = _bar_width(bar) * count / counts.total
            result.append((x, part, status))
            x += part
    return result


def _bar_width(bar: Bar) -> float:
    """Legend bars are short squares; item bars have the full width."""
    return 0.22 if bar.y < 1 else BAR_WIDTH


def render_group_png(shapes: list[GroupShape]) -> bytes:
    from report.profile import png_of

    return png_of(shapes, _mpl_bar)


def _mpl_bar(ax, shape: Bar) -> None:
    from matplotlib.patches import Rectangle

    for x, part, status in _segments(shape):
        ax.add_patch(Rectangle((x, shape.y), part, BAR_HEIGHT, facecolor=FILLS[status], edgecolor="none",
                               hatch="////" if status is Status.UNANSWERED else None))
    dashed = (0, (1.5, 1.2)) if shape.counts is None else "solid"
    ax.add_patch(Rectangle((shape.x, shape.y), _bar_width(shape), BAR_HEIGHT, fill=False, edgecolor=INK, linewidth=0.6, linestyle=dashed))


def draw_group_on_pdf(pdf, shapes: list[GroupShape], left_mm: float, top_mm: float, font: str) -> float:
    """The picture as vector shapes on the current page; returns its height in mm."""
    from report.profile import draw_on_pdf

    mm = 25.4
    for shape in shapes:
        if not isinstance(shape, Bar):
            continue
        y = top_mm + shape.y * mm
        for x, part, status in _segments(shape):
            pdf.set_fill_color(*rgb(FILLS[status]))
            pdf.rect(left_mm + x * mm, y, part * mm, BAR_HEIGHT * mm, style="F")
            if status is Status.UNANSWERED:  # hatching, so « sans réponse » stays distinct from « en partie » in print
                pdf.set_draw_color(*rgb(GREY))
                pdf.set_line_width(0.1)
                step = 0.8
                start = left_mm + x * mm
                for offset in range(int(part * mm / step)):
                    pdf.line(start + offset * step, y + BAR_HEIGHT * mm, min(start + offset * step + step, start + part * mm), y)
        pdf.set_draw_color(*rgb(INK))
        pdf.set_line_width(0.2)
        if shape.counts is None:
            with pdf.local_context():
                pdf.set_dash_pattern(dash=0.5, gap=0.4)
                pdf.rect(left_mm + shape.x * mm, y, _bar_width(shape) * mm, BAR_HEIGHT * mm, style="D")
        else:
            pdf.rect(left_mm + shape.x * mm, y, _bar_width(shape) * mm, BAR_HEIGHT * mm, style="D")
    return draw_on_pdf(pdf, [s for s in shapes if not isinstance(s, Bar)], left_mm, top_mm, font)


# --------------------------------------------------------------------------- content


def _percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{round(value * 100)}\u202f%"


def _short(text: str) -> str:
    from dialogue.features.collective.wording import short_question

    return short_question(text)


def _spread_text(spread: QuestionSpread) -> str:
    """The chat's spread line, with the PDF's printable balance sign."""
    from dialogue.features.collective.wording import CONTESTED as CHAT_CONTESTED
    from dialogue.features.collective.wording import spread_line

    return spread_line(spread).replace(CHAT_CONTESTED, CONTESTED)


def _question_line(spread: QuestionSpread) -> str:
    skipped = f", {spread.skipped} passée(s)" if spread.skipped else ""
    return (
        f"**{_short(spread.question.text)}** — accord {_percent(spread.agreement)} "
        f"({spread.answered} réponses{skipped}) : {_spread_text(spread)}"
    )


def _contest(spread: QuestionSpread) -> str:
    if spread.diverges:
        return f"« {_short(spread.question.text)} » (accord {_percent(spread.agreement)})"
    options = ", ".join(f"{o.label} ({o.count}/{spread.answered})" for o in spread.contested_options)
    return f"« {_short(spread.question.text)} » : {options}"


def file_names(day: date, stamp: str | None = None) -> tuple[str, str]:
    """Unique names, like the personal report's (see :func:`report.build.unique_stamp`)."""
    from report.files import unique_stamp

    stamp = stamp or unique_stamp()
    return f"vue-de-groupe-{day.isoformat()}-{stamp}.pdf", f"vue-de-groupe-{day.isoformat()}-{stamp}.png"


@dataclass(frozen=True, slots=True)
class GroupContent:
    """What the PDF's frame needs (title, reference, footer), as :class:`report.content.ReportContent` has."""

    title: str
    reference: str
    footer: str


def _name(name: str) -> str:
    """A member's name in a markdown paragraph: never bold, never a link (fpdf2 reads ``**`` and ``[…](…)``)."""
    return " ".join(name.split()).replace("**", "\\**").replace("](", "] (")


def build_group_report(kb: KnowledgeBase, request: GroupReportRequest):
    """The PDF and the PNG of the group view (a :class:`report.files.ReportFiles`)."""
    from report.files import ReportFiles

    document = kb.document
    content = GroupContent(
        title=french_spacing(f"{TITLE} — {' '.join(request.collective_name.split())}"),
        reference=french_spacing(f"{document.publisher}, « {document.title} », document non daté."),
        footer=french_spacing(f"Établi à partir de « {document.title} » ({document.publisher}) — ne remplace pas un accompagnement."),
    )
    shapes = group_layout(load_profile(), request.profile, PICTURE_TITLE)
    pdf = _render_pdf(kb, request, content, shapes)
    png = render_group_png(shapes)
    pdf_name, png_name = file_names(request.day)
    return ReportFiles(pdf, png, pdf_name, png_name)


def _render_pdf(kb: KnowledgeBase, request: GroupReportRequest, content: GroupContent, shapes: list[GroupShape]) -> bytes:
    from report.content import ReportContent
    from report.pdf import FONT, MARGIN, ReportPDF
    from report.profile import Shape

    class GroupPDF(ReportPDF):
        def header(self) -> None:
            if self.page_no() == 2 and self.pending_picture:
                height = draw_group_on_pdf(self, cast(list[GroupShape], self.pending_picture), MARGIN - 5, MARGIN, FONT)
                self.pending_picture = None
                self.set_y(MARGIN + height + 4)

    # The page set-up of the personal report, with the group's content and picture (same fields read).
    pdf = GroupPDF(cast(ReportContent, content), cast(list[Shape], shapes))
    profile = request.profile
    p = profile.participation
    pdf.add_page()
    pdf.ln(10)
    pdf.set_font(FONT, "B", 20)
    pdf.multi_cell(0, 9, content.title, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(FONT, "", 11)
    pdf.cell(0, 6, f"Établie le {french_date(request.day)}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.paragraph(f"**Document de référence** : {content.reference}", size=9.5)
    pdf.paragraph(printable(f"Coordination : {_name(request.coordinator_name)}."), size=9.5)
    if request.closed:
        pdf.paragraph("Collectif clos : la vue est figée avec les réponses données jusqu’à sa clôture.", size=9.5)
    pdf.heading("Participation")
    pdf.item("•", f"Ont ouvert l’invitation : **{p.invited}**")
    pdf.item("•", f"Membres (coordination comprise) : **{p.joined}**")
    pdf.item("•", f"Ont commencé le parcours : **{p.answering}**")
    pdf.item("•", f"L’ont terminé : **{p.finished}**")
    if request.signed:
        pdf.paragraph(printable("Ont choisi de signer : " + ", ".join(_name(name) for name in request.signed) + "."))
    pdf.heading("Comment lire cette vue")
    pdf.paragraph(
        "**Mesure de l’accord** : la part de la réponse majoritaire parmi les membres qui ont répondu. "
        "Pour une question à choix multiples, chaque option compte comme un oui ou un non, puis on fait la moyenne. "
        f"On parle d’accord à partir de deux tiers ({_percent(AGREEMENT_THRESHOLD)}), de divergence en dessous. "
        f"Aucune répartition n’est donnée pour une question qui a {TOO_FEW} ; aucune réponse individuelle "
        f"n’apparaît dans ce document. {CONTESTED} signale une option ou un constat sur lequel le collectif est partagé."
    )
    _views(pdf, kb, request)
    if pdf.pending_picture:
        pdf.add_page()
    return bytes(pdf.output())


def _views(pdf, kb: KnowledgeBase, request: GroupReportRequest) -> None:
    profile = request.profile
    divergences, agreements, too_few = profile.divergences, profile.agreements, profile.too_few
    if divergences:
        pdf.heading("Où vos avis divergent (le plus partagé d’abord)")
        for spread in divergences:
            pdf.item("•", printable(_question_line(spread)))
    if agreements:
        pdf.heading("Où vous êtes d’accord")
        for spread in agreements:
            pdf.item("•", printable(_question_line(spread)))
    if too_few:
        pdf.heading(f"Questions qui ont {TOO_FEW}")
        pdf.paragraph("Leur répartition reste masquée pour protéger l’anonymat des membres.", grey=True)
        for spread in too_few:
            pdf.item("–", printable(f"{_short(spread.question.text)} — {TOO_FEW}"), size=8)
    if request.debate:
        if pdf.will_page_break(60):  # the heading stays with its first point
            pdf.add_page()
        pdf.heading("Points à mettre en débat")
        for point, spread in request.debate:
            pdf.heading(f"{point.theme} — {kb.document.cite(point.chapter, point.page)}", 10.5)
            pdf.paragraph(printable(f"À propos de : « {_short(spread.question.text)} » (accord {_percent(spread.agreement)})."), grey=True)
            pdf.paragraph(printable(f"**Ce que dit le document** : {point.says}"))
            pdf.paragraph(printable(f"**Pourquoi c’est important** : {point.why}"))
            pdf.paragraph("**À discuter ensemble :**")
            for question in point.ask:
                pdf.item("?", printable(question))
    _synthesis(pdf, kb, request)


def _synthesis(pdf, kb: KnowledgeBase, request: GroupReportRequest) -> None:
    from dialogue.flows.synthesis_text import cited_line

    result = request.synthesis
    pdf.heading("Synthèse du groupe")
    pdf.paragraph(
        "Les règles de la synthèse personnelle, appliquées aux réponses majoritaires du collectif. "
        f"{CONTESTED} signale un constat qui repose sur une question, ou une option, qui vous divise.",
        grey=True,
    )
    shown = False
    for section in result.synthesis.sections:
        if section.skipped or (not section.lines and not section.recommendation_label):
            continue
        shown = True
        # The heading names the chapter only: each finding cites its own page, as in the chat.
        title = section.title if section.id == NEXT_STEPS_SECTION else f"{section.title} — {kb.document.cite_chapter(section.chapter)}"
        pdf.heading(title, 11)
        contested = result.contested_sections.get(section.id, ())
        if section.recommendation_label:
            pdf.paragraph(f"Piste qui ressort des réponses majoritaires : **{section.recommendation_label}**")
            if contested:
                divided = ", ".join(_contest(s) for s in contested)
                pdf.paragraph(printable(f"{CONTESTED} Piste fragile : vos avis divergent sur {divided}. À trancher ensemble avant d’agir."))
        for line in section.lines:
            pdf.item("•", printable(cited_line(line, section).removeprefix("- ")))
            for spread in result.contested_rules.get(line.rule_id, ()):
                pdf.item(CONTESTED, printable(f"avis partagés sur {_contest(spread)}"), size=8, indent=10)
    if not shown:
        pdf.paragraph("Les réponses majoritaires ne suffisent pas encore pour en tirer des constats.")

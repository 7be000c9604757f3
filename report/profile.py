"""The profile picture: the document's lists, each item shown against the user's answers.

``profile.yaml`` says which answer makes an item present, partly present or
absent. Nothing is scored or weighted: the picture only reports answers.
matplotlib is imported inside :func:`draw_profile`, so importing this module
stays cheap for the chat and the bot.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PROFILE_FILE = Path(__file__).resolve().parent / "profile.yaml"

Answers = Mapping[str, Any]


class Status(Enum):
    PRESENT = "présent"
    PARTLY = "en partie"
    ABSENT = "absent"
    UNANSWERED = "sans réponse"


@dataclass(frozen=True, slots=True)
class Item:
    label: str
    question: str
    option: str | None = None  # multiple-choice question: present when this option is ticked
    present: tuple[str, ...] = ()  # single-choice question: answers meaning « present »
    partly: tuple[str, ...] = ()
    #: A difficulty the document names (a disparity, funders' pressure): present is not a strength.
    difficulty: bool = False

    def status(self, answers: Answers) -> Status:
        value = answers.get(self.question)
        if value is None:  # skipped or not asked yet: nothing is guessed
            return Status.UNANSWERED
        if self.option is not None:
            return Status.PRESENT if isinstance(value, (list, tuple)) and self.option in value else Status.ABSENT
        if value in self.present:
            return Status.PRESENT
        if value in self.partly:
            return Status.PARTLY
        return Status.ABSENT


@dataclass(frozen=True, slots=True)
class Theme:
    title: str
    chapter: str
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    caption: str
    themes: tuple[Theme, ...]


@dataclass(frozen=True, slots=True)
class ProfileRow:
    theme: str
    label: str
    status: Status


@lru_cache(maxsize=4)
def load_profile(path: Path = PROFILE_FILE) -> ProfileSpec:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    themes = []
    for theme in raw["themes"]:
        items = tuple(
            Item(
                label=item["label"],
                question=item["question"],
                option=item.get("option"),
                present=tuple(item.get("present", ())),
                partly=tuple(item.get("partly", ())),
                difficulty=item.get("difficulty") is True,
            )
            for item in theme["items"]
        )
        themes.append(Theme(theme["title"], str(theme["chapter"]), items))
    return ProfileSpec(" ".join(raw["caption"].split()), tuple(themes))


def check_profile(spec: ProfileSpec, flows: Mapping[str, Any], chapters: Mapping[str, Any]) -> list[str]:
    """Problems of ``spec`` against the flows' questions and options (empty when consistent)."""
    questions = {q.id: q for flow in flows.values() for step in flow.steps for q in step.questions}
    problems = []
    for theme in spec.themes:
        if theme.chapter not in chapters:
            problems.append(f"{theme.title} : chapitre {theme.chapter} inconnu")
        for item in theme.items:
            question = questions.get(item.question)
            if question is None:
                problems.append(f"{item.label} : question {item.question} inconnue")
                continue
            options = {o.id for o in question.options}
            wanted = [item.option] if item.option else [*item.present, *item.partly]
            if bool(item.option) != (question.kind == "multiple") or not wanted:
                problems.append(f"{item.label} : « option » pour un choix multiple, « present » pour un choix unique")
            problems.extend(f"{item.label} : option {o} inconnue" for o in wanted if o not in options)
    return problems


def profile_rows(spec: ProfileSpec, answers: Answers) -> list[ProfileRow]:
    return [ProfileRow(theme.title, item.label, item.status(answers)) for theme in spec.themes for item in theme.items]


# --------------------------------------------------------------------------- layout

#: Picture size in inches: the PDF draws it at this size, the PNG is rendered at PNG_DPI.
FIGURE_SIZE = (7.2, 9.0)
PNG_DPI = 120
INK = "#1b2a41"  # dark enough to print as black
GREY = "#555555"
ROW = 0.215  # inches per item row
MARK = 0.14  # side of a status square, inches
CAPTION_WIDTH = 118  # characters per caption line
DIFFICULTY_LEGEND = "difficulté signalée"
#: The font the PDF embeds too (shipped with matplotlib), whatever the local matplotlib settings say.
FONT_FAMILY = "DejaVu Sans"


@dataclass(frozen=True, slots=True)
class Mark:
    """A status square whose top-left corner is (x, y), in inches from the top-left of the picture."""

    x: float
    y: float
    status: Status
    #: The item is a difficulty: present, it is drawn as a cross, not as a filled square.
    difficulty: bool = False


@dataclass(frozen=True, slots=True)
class Label:
    """Text whose baseline starts at (x, y)."""

    x: float
    y: float
    text: str
    size: float  # points
    bold: bool = False
    colour: str = "#000000"


@dataclass(frozen=True, slots=True)
class Rule:
    x1: float
    y1: float
    x2: float
    y2: float


Shape = Mark | Label | Rule


def _beside_mark(y_top: float, size: float) -> float:
    """Baseline that centres text of ``size`` points on a mark whose top is ``y_top``."""
    return y_top + MARK / 2 + 0.36 * size / 72


def _columns(spec: ProfileSpec) -> tuple[list[Theme], list[Theme]]:
    """Split the themes in two columns of about the same height, keeping the file's order."""
    heights = [len(theme.items) + 1.6 for theme in spec.themes]
    total, running = sum(heights), 0.0
    for index, height in enumerate(heights):
        if running + height / 2 > total / 2:
            return list(spec.themes[:index]), list(spec.themes[index:])
        running += height
    return list(spec.themes), []


def _fr(text: str) -> str:
    """French spacing with the narrow no-break space, as in the rest of the report."""
    from report.content import french_spacing

    return french_spacing(text)


def layout(spec: ProfileSpec, answers: Answers, title: str) -> list[Shape]:
    """What the picture shows, as shapes: drawn by matplotlib for the PNG and by fpdf2 in the PDF."""
    width, _ = FIGURE_SIZE
    title = _fr(title)
    shapes: list[Shape] = [Label(0.2, 0.4, title, 12, bold=True, colour=INK)]
    x = 0.2
    legend = [(Mark(0, 0.62, status), status.value) for status in Status]
    legend.append((Mark(0, 0.62, Status.PRESENT, difficulty=True), DIFFICULTY_LEGEND))
    for mark, text in legend:
        shapes.append(Mark(x, mark.y, mark.status, mark.difficulty))
        shapes.append(Label(x + MARK + 0.07, _beside_mark(0.62, 8), text, 8))
        x += 1.38
    shapes.append(Rule(0.2, 0.95, width - 0.2, 0.95))
    bottom = 1.0
    # Only what the user answered: a theme none of whose questions has an answer is left out.
    answered = [theme for theme in spec.themes if any(i.status(answers) is not Status.UNANSWERED for i in theme.items)]
    if answered:
        spec = ProfileSpec(spec.caption, tuple(answered))
    for column, themes in enumerate(_columns(spec)):
        left = 0.2 + column * (width / 2)
        y = 1.25
        for theme in themes:
            shapes.append(Label(left, y, _fr(f"{theme.title} (chap.\u202f{theme.chapter})"), 8.6, bold=True, colour=INK))
            y += 0.09
            for item in theme.items:
                shapes.append(Mark(left, y, item.status(answers), item.difficulty))
                shapes.append(Label(left + MARK + 0.08, _beside_mark(y, 7.8), _fr(item.label), 7.8))
                y += ROW
            y += 0.3
        bottom = max(bottom, y - 0.1)
    shapes.append(Rule(0.2, bottom, width - 0.2, bottom))
    for number, line in enumerate(textwrap.wrap(_fr(spec.caption), CAPTION_WIDTH, break_on_hyphens=False)):
        shapes.append(Label(0.2, bottom + 0.25 + number * 0.16, line, 7.4))
    return shapes


# --------------------------------------------------------------------------- PNG (matplotlib)


def _mpl_mark(ax, mark: Mark) -> None:
    """The *shape* of the square carries the status, so it survives black-and-white printing."""
    from matplotlib.patches import Polygon, Rectangle

    x, y, status = mark.x, mark.y, mark.status
    if status is Status.UNANSWERED:
        ax.add_patch(Rectangle((x, y), MARK, MARK, fill=False, edgecolor=GREY, linewidth=0.9, linestyle=(0, (1.5, 1.2))))
        ax.text(x + MARK / 2, y + MARK / 2, "?", ha="center", va="center", fontsize=6.5, color=GREY, fontfamily=FONT_FAMILY)
        return
    if mark.difficulty and status is Status.PRESENT:  # a cross: noted, never read as a strength
        ax.add_patch(Rectangle((x, y), MARK, MARK, facecolor="none", edgecolor=INK, linewidth=1.0))
        ax.plot([x, x + MARK], [y, y + MARK], color=INK, linewidth=1.0)
        ax.plot([x, x + MARK], [y + MARK, y], color=INK, linewidth=1.0)
        return
    if status is Status.PARTLY:
        ax.add_patch(Polygon([(x, y + MARK), (x + MARK, y + MARK), (x, y)], closed=True, facecolor=INK, edgecolor="none"))
    face = INK if status is Status.PRESENT else "none"
    ax.add_patch(Rectangle((x, y), MARK, MARK, facecolor=face, edgecolor=INK, linewidth=1.0))


def render_png(shapes: list[Shape]) -> bytes:
    return png_of(shapes, _mpl_mark)


def png_of(shapes: list, draw: Callable[[Any, Any], None]) -> bytes:
    """Labels and rules drawn here; every other shape by ``draw(ax, shape)`` (marks, bars)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    width, height = FIGURE_SIZE
    figure = Figure(figsize=FIGURE_SIZE)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # y grows downwards, in inches, like the PDF
    ax.set_axis_off()
    for shape in shapes:
        if isinstance(shape, Label):
            weight = "bold" if shape.bold else "normal"
            ax.text(
                shape.x, shape.y, shape.text, fontsize=shape.size, fontweight=weight, color=shape.colour,
                va="baseline", fontfamily=FONT_FAMILY,
            )
        elif isinstance(shape, Rule):
            ax.plot([shape.x1, shape.x2], [shape.y1, shape.y2], color=GREY, linewidth=0.5)
        else:
            draw(ax, shape)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=PNG_DPI, facecolor="white", metadata={"Software": None})
    return out.getvalue()


# --------------------------------------------------------------------------- PDF (fpdf2, vector)


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def draw_on_pdf(pdf, shapes: list[Shape], left_mm: float, top_mm: float, font: str) -> float:
    """Draw the picture as vector shapes on the current page; returns its height in mm."""
    mm = 25.4

    def at(x: float, y: float) -> tuple[float, float]:
        return left_mm + x * mm, top_mm + y * mm

    side = MARK * mm
    for shape in shapes:
        if isinstance(shape, Mark):
            x, y = at(shape.x, shape.y)
            if shape.status is Status.UNANSWERED:
                pdf.set_draw_color(*rgb(GREY))
                pdf.set_line_width(0.25)
                with pdf.local_context():
                    pdf.set_dash_pattern(dash=0.5, gap=0.4)
                    pdf.rect(x, y, side, side, style="D")
                pdf.set_font(font, size=6.5)
                pdf.set_text_color(*rgb(GREY))
                pdf.text(x + side / 2 - pdf.get_string_width("?") / 2, y + side / 2 + 0.8, "?")
                continue
            pdf.set_draw_color(*rgb(INK))
            pdf.set_fill_color(*rgb(INK))
            pdf.set_line_width(0.3)
            if shape.difficulty and shape.status is Status.PRESENT:
                pdf.rect(x, y, side, side, style="D")
                pdf.line(x, y, x + side, y + side)
                pdf.line(x, y + side, x + side, y)
                continue
            if shape.status is Status.PARTLY:
                pdf.polygon([(x, y + side), (x + side, y + side), (x, y)], style="F")
            pdf.rect(x, y, side, side, style="DF" if shape.status is Status.PRESENT else "D")
        elif isinstance(shape, Label):
            pdf.set_font(font, style="B" if shape.bold else "", size=shape.size)
            pdf.set_text_color(*rgb(shape.colour))
            pdf.text(*at(shape.x, shape.y), shape.text)
        else:
            pdf.set_draw_color(*rgb(GREY))
            pdf.set_line_width(0.15)
            pdf.line(*at(shape.x1, shape.y1), *at(shape.x2, shape.y2))
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_fill_color(255, 255, 255)
    return max(s.y for s in shapes if isinstance(s, Label)) * mm + 2

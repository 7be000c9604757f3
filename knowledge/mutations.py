"""Plant errors in a copy of the knowledge and check that ``kb check --against`` catches them.

Each :class:`Mutation` is one kind of error an editor could make while rewriting a text: a
proportion, a year or a number changed, a hedge hardened (« peut » → « souvent »), a meaning
reversed (« rapide » → « lente », « permet » → « ne permet pas »), an advice widened to « tous
les PTCE », a page moved inside its chapter, a wrong chapter, an invented threshold,
percentage or place, a paragraph copied from the document. :func:`mutation_test` applies them
to a copy of ``knowledge/data`` — all at once (each on its own entry) and then one by one — and
reports which kinds ``check_against`` caught. The suite requires 100 %; ``make bench`` prints
the rate.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.loader import DATA_DIR

#: The reference document, next to the checkout (``../shared/source``).
SOURCE = Path(__file__).resolve().parents[2] / "shared" / "source" / "000_fae4ab4579966dab.txt"


@dataclass(frozen=True, slots=True)
class Mutation:
    kind: str  # what an expert would call the error
    file: str  # relative to the data directory
    entry: str  # the entry (id or term) whose text is changed
    old: str  # replaced once, within the entry
    new: str


MUTATIONS = (
    Mutation("proportion changée (« deux tiers » → « trois quarts »)", "synthesis.yaml", "lieu_tiers_lieu",
             "environ deux tiers", "environ trois quarts"),
    Mutation("année changée (2017 → 2014)", "synthesis.yaml", "fin_aucun_hdf", "2017", "2014"),
    Mutation("sens inversé (création « rapide » → « lente »)", "synthesis.yaml", "form_deja_association",
             "elle se crée rapidement", "elle est lente à créer"),
    Mutation("négation (« permet » → « ne permet pas »)", "synthesis.yaml", "form_association",
             "elle permet de\n          conventionner directement", "elle ne permet pas de\n          conventionner directement"),
    Mutation("conseil étendu à tous (« la SCIC à tous les PTCE »)", "synthesis.yaml", "form_scic",
             "le document\n          indique que la SCIC est souvent privilégiée",
             "le document\n          recommande la SCIC à tous les PTCE"),
    Mutation("page déplacée dans le bon chapitre (p. 18 → p. 17)", "synthesis.yaml", "form_deja_scic",
             "page: 18", "page: 17"),
    Mutation("seuil de maturité inventé (« quatre marqueurs sur six »)", "synthesis.yaml", "mat_existant",
             "Il ne donne pas de grille de notation", "Le document fixe ce seuil à quatre marqueurs sur six"),
    Mutation("nuance durcie (« peut » → « souvent »)", "synthesis.yaml", "lieu_collectivite",
             "que le lieu peut être le point de départ", "que le lieu est souvent le point de départ"),
    Mutation("nuance durcie (« peuvent » → « toujours »)", "synthesis.yaml", "terr_conflits",
             "des rapports qui peuvent être conflictuels", "des rapports toujours conflictuels"),
    Mutation("mauvais chapitre (09 → 10)", "synthesis.yaml", "fin_emblem_oui",
             'chapter: "09"\n        page: 21', 'chapter: "10"\n        page: 24'),
    Mutation("pourcentage inventé", "synthesis.yaml", "fin_appels_projets",
             "Vous vous appuyez sur des appels à projets.", "Vous vous appuyez sur des appels à projets, comme 60 % des dynamiques."),
    Mutation("lieu inventé (« en Bretagne »)", "synthesis.yaml", "fin_collectivites",
             "ses exemples viennent tous des Hauts-de-France",
             "ses exemples viennent des Hauts-de-France et de Bretagne"),
    Mutation("nombre changé (« trois dimensions » → « quatre »)", "synthesis.yaml", "fonc_aucune",
             "autour de trois dimensions", "autour de quatre dimensions"),
    Mutation("passage recopié du document", "glossary.yaml", "Neutralité", 'definition: "',
             'definition: "L’évolution du PTCE nécessite le transfert du portage d’un des membres vers une structure '
             'juridique dédiée. '),
)  # fmt: skip


def apply(data_dir: Path, mutation: Mutation) -> bool:
    """Change the entry's text in ``data_dir`` (a copy); False when the text was not found."""
    path = Path(data_dir) / mutation.file
    text = path.read_text(encoding="utf-8")
    start = -1
    for marker in (f"- id: {mutation.entry}\n", f'- term: "{mutation.entry}"\n'):
        start = text.find(marker)
        if start >= 0:
            break
    if start < 0:
        return False
    following = [text.find(marker, start + 1) for marker in ("\n      - id: ", "\n  - id: ", "\n  - term: ")]
    end = min([position for position in following if position > 0], default=len(text))
    at = text.find(mutation.old, start, end)
    if at < 0:
        return False
    path.write_text(text[:at] + mutation.new + text[at + len(mutation.old) :], encoding="utf-8")
    return True


@dataclass(slots=True)
class MutationReport:
    caught: dict[str, bool] = field(default_factory=dict)  # kind → caught alone
    caught_together: dict[str, bool] = field(default_factory=dict)  # kind → caught among all the others
    baseline_problems: int = 0
    messages: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kinds(self) -> int:
        return len(self.caught)

    @property
    def catch_rate(self) -> float:
        return sum(self.caught.values()) / len(self.caught) if self.caught else 0.0

    def as_dict(self) -> dict:
        return {
            "kinds": self.kinds,
            "catch_rate": self.catch_rate,
            "caught": self.caught,
            "caught_together": self.caught_together,
            "baseline_problems": self.baseline_problems,
        }


def _problems(data_dir: Path, source: Path) -> list:
    from knowledge.source_check import check_against

    return check_against(data_dir, source, promises=False).problems


def _about(problems: list, mutation: Mutation) -> list[str]:
    return [p.describe() for p in problems if p.where.entry == mutation.entry and p.where.file == mutation.file]


def mutation_test(
    workdir: Path | None = None, *, data_dir: Path = DATA_DIR, source: Path = SOURCE, one_by_one: bool = True
) -> MutationReport:
    """Every kind planted together in one copy, then (``one_by_one``) each alone in a fresh copy."""
    report = MutationReport()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        copy = Path(tmp) / "data"
        shutil.copytree(data_dir, copy)
        report.baseline_problems = len(_problems(copy, source))
        applied = {m.kind: apply(copy, m) for m in MUTATIONS}
        problems = _problems(copy, source)
        for mutation in MUTATIONS:
            found = _about(problems, mutation)
            report.caught_together[mutation.kind] = applied[mutation.kind] and bool(found)
            report.messages[mutation.kind] = found
        for mutation in MUTATIONS:
            if not one_by_one:
                report.caught[mutation.kind] = report.caught_together[mutation.kind]
                continue
            shutil.rmtree(copy)
            shutil.copytree(data_dir, copy)
            planted = apply(copy, mutation)
            found = _about(_problems(copy, source), mutation) if planted else []
            report.caught[mutation.kind] = bool(found)
            report.messages[mutation.kind] = found or report.messages[mutation.kind]
    return report

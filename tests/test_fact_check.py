"""``kb check --against`` with teeth (issue #20): the page map, each kind of check, the mutation test."""

from __future__ import annotations

import pytest

from knowledge.document_pages import PagedDocument
from knowledge.fact_check import Statement, _check, _index, read_paged
from knowledge.loader import DATA_DIR, load_document
from knowledge.mutations import MUTATIONS, SOURCE, mutation_test

pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="reference document not found")


@pytest.fixture(scope="module")
def paged() -> PagedDocument:
    return read_paged(SOURCE, DATA_DIR)


def test_the_page_map_follows_the_running_headers(paged):
    assert sorted(paged.pages) == list(range(6, 30))
    assert paged.pages[17].chapter == "07" and "trésorerie" in paged.pages[17].text
    assert "Société Coopérative d'Intérêt Collectif" in paged.pages[18].text
    assert paged.pages[22].text.startswith("Cela implique")  # the one page printed without a header
    assert "Force est de constater" in paged.pages[23].text
    assert "Altitudes coopérantes" in paged.front_matter and "Altitudes" not in paged.pages[6].text


def test_headers_that_do_not_match_the_table_of_contents_are_refused(tmp_path):
    document = load_document(DATA_DIR / "document.yaml")
    broken = tmp_path / "doc.txt"
    broken.write_text(SOURCE.read_text(encoding="utf-8").replace("\n09\n\nModèle économique\n", "\n"), encoding="utf-8")
    from knowledge.document_pages import PageMapError

    with pytest.raises(PageMapError):
        PagedDocument.read(broken, document, dict(document.unheaded_pages))


def _findings(paged, text: str, page: int, chapter: str) -> list[str]:
    statement = Statement("synthesis.yaml", "essai", "text", text, chapter, (page,))
    return [finding.describe() for finding in _check(statement, _index(paged))]


def test_each_kind_of_check_on_a_statement(paged):
    faithful = "Une association peut présenter une fragilité financière, principalement au niveau de la trésorerie."
    assert _findings(paged, faithful, 17, "07") == []
    assert any("nuance durcie" in f for f in _findings(paged, faithful.replace("peut présenter", "présente toujours"), 17, "07"))
    assert any("« 2014 »" in f for f in _findings(paged, "Un dispositif régional existe depuis 2014.", 21, "09"))
    assert any("proportion" in f for f in _findings(paged, "Environ trois quarts des dynamiques ont un tiers-lieu.", 24, "10"))
    assert any("contresens" in f for f in _findings(paged, "Les modalités de création d’une association sont lentes.", 17, "07"))
    moved = "Une association peut présenter une fragilité financière, surtout de trésorerie."
    assert any("termes clés" in f for f in _findings(paged, moved, 16, "07"))


def test_planted_errors_are_all_caught(capsys):
    """At least ten kinds, each on its own entry: all planted in one copy, each must be caught."""
    assert len({m.kind for m in MUTATIONS}) >= 10
    assert len({(m.file, m.entry) for m in MUTATIONS}) == len(MUTATIONS)
    report = mutation_test(one_by_one=False)
    assert report.baseline_problems == 0
    missed = [kind for kind, caught in report.caught.items() if not caught]
    with capsys.disabled():
        print(f"\nkb check : {report.catch_rate:.0%} des {report.kinds} sortes d’erreurs plantées détectées")
    assert missed == []

"""One validation helper for every knowledge file: same error shape, one-way imports."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.errors import KnowledgeErrors
from knowledge.loader import DATA_DIR, load_knowledge
from knowledge.validation import Collector, StrictCollector

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


def _imports(module: str) -> set[str]:
    tree = ast.parse((KNOWLEDGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_imports_go_one_way():
    assert "knowledge.loader" not in _imports("flows")
    assert {m for m in _imports("validation") if m.startswith("knowledge")} == {"knowledge.errors"}


def test_the_former_loader_helper_keeps_its_strict_defaults(tmp_path):
    check = StrictCollector(tmp_path / "x.yaml")
    assert isinstance(check, Collector)
    assert check.fields({"a": 1}, "e", ("a", "b")) is False  # missing field: the entry is skipped
    assert check.strings({}, "e", "items") == ()
    check.add("message", "e", field_name="f")
    assert [(e.entry, e.field) for e in check.errors][-1] == ("e", "f")
    lenient = Collector(tmp_path / "y.yaml")
    assert lenient.fields({"a": 1}, "e", ("a", "b")) is True  # flows go on with what is there


def _errors(tmp_path: Path, name: str, change) -> KnowledgeErrors:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / name
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(KnowledgeErrors) as caught:
        load_knowledge(data)
    return caught.value


@pytest.mark.parametrize(
    ("name", "change", "entry", "field", "hint"),
    [
        ("topics.yaml", lambda r: r["topics"][0].pop("short"), "ptce.definition", "short", "ajoutez une ligne « short: … »"),
        ("topics.yaml", lambda r: r["topics"][0].update(sourse={}), "ptce.definition", "sourse", "écrivez plutôt « source »"),
        ("topics.yaml", lambda r: r["topics"][0].update(short="x" * 710), "ptce.definition", "short", "raccourcissez-le de 10 caractères"),
        ("topics.yaml", lambda r: r["topics"][0].update(related=["ptce.typologi"]), "ptce.definition", "related", "« ptce.typologie »"),
        ("topics.yaml", lambda r: r["topics"][0]["source"].update(page=20), "ptce.definition", "source.page", "écrivez une page de 6 à 6"),
        ("document.yaml", lambda r: r["intro_questions"][0]["topics"].append("lieu.rol"), "quoi", "topics", "« lieu.role »"),
        ("flows/orientation.yaml", lambda r: r["steps"][0].update(titre="x"), None, "titre", "écrivez plutôt « title »"),
    ],
)
def test_every_error_names_file_entry_field_and_what_to_write(tmp_path, name, change, entry, field, hint):
    errors = _errors(tmp_path, name, change).errors
    matching = [e for e in errors if e.field == field and (entry is None or e.entry == entry)]
    assert matching, "\n".join(map(str, errors))
    error = matching[0]
    assert error.file == Path(name).name and error.hint and hint in error.hint
    assert str(error).startswith(f"{error.file}, entrée « {error.entry} », champ « {field} » : ")
    assert f" → {error.hint}" in str(error)

"""Load and validate the guided flows (``flows/*.yaml``).

Every problem is reported as a :class:`KnowledgeError` naming the file, the
entry and the field; all the problems found in one pass are raised together
as :class:`KnowledgeErrors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from knowledge.errors import KnowledgeError, KnowledgeErrors
from knowledge.flows import ENTRY_ID, KINDS, LABEL_MAX, OPTION_ID, RESULTS, Comparison, Flow, Option, Question, Step
from knowledge.text import normalise
from knowledge.validation import Collector, entry_name, read_yaml


def _load_option(check: Collector, raw: Any, entry: str) -> Option | None:
    if not check.fields(raw, entry, ("id", "label"), ("keywords",)):
        return None
    ident = check.ident(raw, entry, "id", OPTION_ID, 20)
    label = check.text(raw, entry, "label", max_len=LABEL_MAX)
    keywords = check.strings(raw, entry, "keywords")
    return Option(ident, label, keywords)


def _load_question(check: Collector, raw: Any, entry: str) -> Question | None:
    if not check.fields(raw, entry, ("id", "text", "kind", "options")):
        return None
    ident = check.ident(raw, entry, "id", ENTRY_ID, 24)
    text = check.text(raw, entry, "text")
    kind = raw.get("kind")
    if "kind" in raw and kind not in KINDS:
        check.add(f"type « {kind} » inconnu (single ou multiple)", entry, "kind")
    options: list[Option] = []
    seen_ids: set[str] = set()
    seen_labels: set[str] = set()
    raw_options = check.items(raw, entry, "options")
    if raw_options and len(raw_options) < 2:
        check.add("au moins deux options sont attendues", entry, "options")
    for index, raw_option in enumerate(raw_options):
        option_entry = entry_name(raw_option, f"option n°{index + 1}", entry)
        option = _load_option(check, raw_option, option_entry)
        if option is None:
            continue
        if option.id in seen_ids:
            check.add(f"option « {option.id} » en double", option_entry, "id")
        if option.label and option.label.casefold() in seen_labels:
            check.add(f"libellé « {option.label} » en double dans la question", option_entry, "label")
        seen_ids.add(option.id)
        seen_labels.add(option.label.casefold())
        options.append(option)
    owners: dict[str, str] = {}
    for option in options:
        for name in _option_names(option):
            if name in owners and owners[name] != option.id:
                check.add(
                    f"« {name} » désigne déjà l’option « {owners[name]} » : réponse libre ambiguë",
                    f"{entry} › {option.id}",
                    "keywords",
                )
            owners.setdefault(name, option.id)
    return Question(ident, text, kind if kind in KINDS else "single", tuple(options))


def _option_names(option: Option) -> set[str]:
    """What a user may type to pick the option (as the engine compares it)."""
    names = {normalise(option.label), normalise(option.id.replace("_", " "))}
    names.update(normalise(keyword) for keyword in option.keywords)
    names.discard("")
    return names


def _load_step(check: Collector, raw: Any, entry: str, topic_ids: set[str]) -> Step | None:
    if not check.fields(raw, entry, ("id", "title", "questions"), ("topic",)):
        return None
    ident = check.ident(raw, entry, "id", ENTRY_ID, 24)
    title = check.text(raw, entry, "title")
    topic = raw.get("topic")
    if topic is not None and (not isinstance(topic, str) or topic not in topic_ids):
        check.add(f"sujet « {topic} » inconnu de topics.yaml", entry, "topic")
    questions = []
    for index, raw_question in enumerate(check.items(raw, entry, "questions")):
        question = _load_question(check, raw_question, entry_name(raw_question, f"question n°{index + 1}", entry))
        if question is not None:
            questions.append(question)
    return Step(ident, title, topic, tuple(questions))


def _load_comparison(check: Collector, raw: Any, entry: str, chapters: set[str]) -> Comparison | None:
    if not check.fields(raw, entry, ("title", "chapter", "columns", "rows")):
        return None
    title = check.text(raw, entry, "title")
    chapter = check.chapter(raw, entry, "chapter", chapters)
    columns: list[tuple[str, str]] = []
    raw_columns = check.items(raw, entry, "columns")
    if raw_columns and len(raw_columns) < 2:
        check.add("au moins deux colonnes sont attendues", entry, "columns")
    for index, raw_column in enumerate(raw_columns):
        column_entry = entry_name(raw_column, f"colonne n°{index + 1}", entry)
        if not check.fields(raw_column, column_entry, ("id", "label")):
            continue
        ident = check.ident(raw_column, column_entry, "id", OPTION_ID, 20)
        if ident in {known for known, _ in columns}:
            check.add(f"colonne « {ident} » en double", column_entry, "id")
        columns.append((ident, check.text(raw_column, column_entry, "label", max_len=LABEL_MAX)))
    column_ids = [ident for ident, _ in columns]
    rows: list[tuple[str, Mapping[str, str]]] = []
    criteria: set[str] = set()
    for index, raw_row in enumerate(check.items(raw, entry, "rows")):
        criterion_name = raw_row.get("criterion") if isinstance(raw_row, dict) else None
        row_entry = f"{entry} › {criterion_name if isinstance(criterion_name, str) and criterion_name else f'ligne n°{index + 1}'}"
        if not check.fields(raw_row, row_entry, ("criterion", "cells")):
            continue
        criterion = check.text(raw_row, row_entry, "criterion", max_len=LABEL_MAX)
        if criterion and criterion.casefold() in criteria:
            check.add(f"critère « {criterion} » en double", row_entry, "criterion")
        criteria.add(criterion.casefold())
        cells: dict[str, str] = {}
        raw_cells = raw_row.get("cells")
        if "cells" in raw_row and check.mapping(raw_cells, row_entry, "cells"):
            for column in column_ids:
                if column not in raw_cells:
                    check.add(f"case manquante pour la colonne « {column} »", row_entry, "cells")
            for column in raw_cells:
                if column not in column_ids:
                    check.add(f"colonne « {column} » inconnue", row_entry, "cells")
                else:
                    cells[column] = check.text(raw_cells, row_entry, column)
        rows.append((criterion, {column: cells.get(column, "") for column in column_ids}))
    return Comparison(title, chapter, tuple(columns), tuple(rows))


def _load_flow(path: Path, topic_ids: set[str], chapters: set[str]) -> tuple[Flow | None, list[KnowledgeError]]:
    check = Collector(path)
    raw = read_yaml(path)
    if not check.fields(raw, None, ("id", "title", "intro", "outro", "result", "steps"), ("comparison",)):
        return None, check.errors
    ident = check.ident(raw, None, "id", ENTRY_ID, 24)
    entry = ident or path.stem
    if ident and ident != path.stem:
        check.add(f"l’identifiant doit être le nom du fichier (« {path.stem} »)", entry, "id")
    title = check.text(raw, entry, "title")
    intro = check.text(raw, entry, "intro")
    outro = check.text(raw, entry, "outro")
    result = raw.get("result")
    if "result" in raw and result not in RESULTS:
        check.add(f"résultat « {result} » inconnu (synthesis ou formes)", entry, "result")
    steps: list[Step] = []
    for index, raw_step in enumerate(check.items(raw, entry, "steps")):
        step = _load_step(check, raw_step, entry_name(raw_step, f"étape n°{index + 1}"), topic_ids)
        if step is not None:
            steps.append(step)
    step_ids: set[str] = set()
    question_ids: set[str] = set()
    for step in steps:
        if step.id in step_ids:
            check.add(f"étape « {step.id} » en double", step.id, "id")
        step_ids.add(step.id)
        for question in step.questions:
            if question.id in question_ids:
                check.add(
                    f"question « {question.id} » en double dans le parcours (clé de réponse unique)",
                    f"{step.id} › {question.id}",
                    "id",
                )
            question_ids.add(question.id)
    comparison = None
    if "comparison" in raw:
        comparison = _load_comparison(check, raw["comparison"], "comparison", chapters)
    elif result == "formes":
        check.add("le guide des formes juridiques doit avoir un tableau de comparaison", entry, "comparison")
    flow = Flow(ident, title, intro, outro, result if result in RESULTS else "synthesis", tuple(steps), comparison)
    return flow, check.errors


def load_flows(directory: Path, topic_ids: set[str], chapters: set[str]) -> dict[str, Flow]:
    """Load every ``*.yaml`` of ``directory`` as a flow, keyed by flow id.

    Raises :class:`KnowledgeErrors` listing every problem found.
    """
    directory = Path(directory)
    errors: list[KnowledgeError] = []
    flows: dict[str, Flow] = {}
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise KnowledgeErrors([KnowledgeError(directory, "aucun parcours (*.yaml) dans ce dossier")])
    owners: dict[str, tuple[Path, Question]] = {}
    for path in paths:
        try:
            flow, found = _load_flow(path, topic_ids, chapters)
        except KnowledgeErrors as failure:
            errors.extend(failure.errors)
            continue
        errors.extend(found)
        if flow is None:
            continue
        if flow.id in flows:
            errors.append(KnowledgeError(path, f"parcours « {flow.id} » déjà défini", entry=flow.id, field="id"))
            continue
        flows[flow.id] = flow
        if found:
            continue  # shared-key checks only make sense on valid flows
        for step, question in flow.questions():
            if question.id not in owners:
                owners[question.id] = (path, question)
                continue
            other_path, other = owners[question.id]
            if other.kind != question.kind:
                errors.append(
                    KnowledgeError(
                        path,
                        f"la question « {question.id} » est aussi dans {other_path.name} avec le type "
                        f"« {other.kind} » : même type attendu",
                        entry=f"{step.id} › {question.id}",
                        field="kind",
                    )
                )
            if set(other.option_ids) != set(question.option_ids):
                errors.append(
                    KnowledgeError(
                        path,
                        f"la question « {question.id} » est aussi dans {other_path.name} avec les options "
                        f"{', '.join(other.option_ids)} : mêmes identifiants d’options attendus",
                        entry=f"{step.id} › {question.id}",
                        field="options",
                    )
                )
    if errors:
        raise KnowledgeErrors(errors)
    return flows

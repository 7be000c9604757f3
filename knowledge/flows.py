"""Load and validate the guided flows (``flows/*.yaml``) and the synthesis rules.

Pure data: this module parses and checks the YAML files and returns frozen
dataclasses. It knows nothing about states or transitions (the dialogue
engine does) nor about evaluating answers (``dialogue/flows/synthesis.py`` does).

Every problem is reported as a :class:`KnowledgeError` naming the file, the
entry and the field; all the problems found in one pass are raised together
as :class:`KnowledgeErrors`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


from knowledge.errors import KnowledgeError, KnowledgeErrors
from knowledge.validation import Collector, read_yaml
from knowledge.text import normalise

LABEL_MAX = 40
#: Longest profile phrase (``short``) of a rule.
SHORT_MAX = 80
OPTION_ID = re.compile(r"^[a-z0-9_]{1,20}$")
ENTRY_ID = re.compile(r"^[a-z0-9_]{1,24}$")

KINDS = ("single", "multiple")
RESULTS = ("synthesis", "formes")
MODES = ("all", "first")

#: The legal-form recommendations a rule of the ``formalisation`` section may give.
RECOMMENDATIONS = ("portage_existant", "association", "scic", "pas_encore")
#: Section whose rules carry a ``recommend`` (and only there).
FORMALISATION_SECTION = "formalisation"
#: Section listing candidate next steps; the synthesis keeps the first ones that match.
NEXT_STEPS_SECTION = "prochaines_etapes"
#: How many next steps the synthesis keeps.
NEXT_STEPS_KEPT = 3

Kind = Literal["single", "multiple"]


# --------------------------------------------------------------------------- flows


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    label: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Question:
    id: str  # the answer key, shared between flows
    text: str
    kind: Kind
    options: tuple[Option, ...]

    def option(self, option_id: str) -> Option | None:
        for option in self.options:
            if option.id == option_id:
                return option
        return None

    @property
    def option_ids(self) -> tuple[str, ...]:
        return tuple(option.id for option in self.options)


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    title: str
    topic: str | None
    questions: tuple[Question, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Side-by-side comparison of legal forms (``formes`` flow).

    ``columns`` are ``(id, label)`` pairs; the ids of the legal-form guide
    are recommendation values (``portage_existant``, ``association``,
    ``scic``) so that the recommended column can be highlighted.
    ``rows`` are ``(criterion, {column_id: text})`` pairs, every column filled.
    """

    title: str
    chapter: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[str, Mapping[str, str]], ...]


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    title: str
    intro: str
    outro: str
    result: Literal["synthesis", "formes"]
    steps: tuple[Step, ...]
    comparison: Comparison | None = None

    def questions(self) -> tuple[tuple[Step, Question], ...]:
        """Every (step, question) pair, in the order they are asked."""
        return tuple((step, question) for step in self.steps for question in step.questions)

    def question(self, question_id: str) -> Question | None:
        for _step, question in self.questions():
            if question.id == question_id:
                return question
        return None

    def step_of(self, question_id: str) -> Step | None:
        for step, question in self.questions():
            if question.id == question_id:
                return step
        return None


def answer_keys(flows: Mapping[str, Flow]) -> dict[str, Question]:
    """All questions of all flows by answer key (shared keys are consistent once loaded)."""
    questions: dict[str, Question] = {}
    for flow in flows.values():
        for _step, question in flow.questions():
            questions.setdefault(question.id, question)
    return questions


# --------------------------------------------------------------------------- synthesis rules


@dataclass(frozen=True, slots=True)
class Condition:
    """One node of a rule's ``when`` tree.

    ``op`` is one of: ``is`` / ``in`` (``values``), ``has`` / ``lacks``
    (``values`` holds the one option), ``count_at_least`` / ``count_at_most``
    (``number``), ``answered``, ``skipped``, ``all`` / ``any`` (``children``),
    ``not`` (one child), ``always``.
    """

    op: str
    key: str | None = None
    values: tuple[str, ...] = ()
    number: int = 0
    children: tuple[Condition, ...] = ()

    def keys(self) -> set[str]:
        """Answer keys read by this condition and its children."""
        found = {self.key} if self.key else set()
        for child in self.children:
            found |= child.keys()
        return found


ALWAYS = Condition("always")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    when: Condition
    text: str
    chapter: str
    vigilance: tuple[str, ...] = ()
    recommend: str | None = None
    #: Page of the document the rule rests on (0 when the YAML gives none).
    page: int = 0
    #: A few words for the profile line of the short synthesis (« PTCE de territoire »).
    short: str = ""


@dataclass(frozen=True, slots=True)
class Checklist:
    """A multiple-choice answer shown as two lists: options ticked and options not ticked."""

    key: str
    present: str  # heading of the ticked options (« Établis selon vous »)
    absent: str  # heading of the others (« Pas encore établis »)


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    chapter: str
    questions: tuple[str, ...]
    mode: Literal["all", "first"]
    rules: tuple[Rule, ...]
    #: Answers the rules may also read without being the section's own questions: they never
    #: make the section « answered » (a section is skipped when all of ``questions`` are).
    context: tuple[str, ...] = ()
    checklist: Checklist | None = None


@dataclass(frozen=True, slots=True)
class SynthesisRules:
    intro: str
    recommendations: Mapping[str, str]  # recommendation value -> French label
    sections: tuple[Section, ...]
    #: Every flow question by answer key: lets the synthesis read stored answers of older flows safely.
    questions: Mapping[str, Question] = field(default_factory=dict)
    #: Sections whose first vigilance point the short synthesis may show, in order of priority.
    short_vigilance: tuple[str, ...] = ()

    def section(self, section_id: str) -> Section | None:
        for section in self.sections:
            if section.id == section_id:
                return section
        return None

    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for section in self.sections for rule in section.rules)


# --------------------------------------------------------------------------- validation helpers


#: Flows and synthesis rules report errors like every other knowledge file.
_Check = Collector


def _read(path: Path) -> Any:
    return read_yaml(path)


def _entry_name(value: Any, fallback: str, prefix: str = "") -> str:
    ident = value.get("id") if isinstance(value, dict) else None
    name = str(ident) if isinstance(ident, str) and ident else fallback
    return f"{prefix} › {name}" if prefix else name


# --------------------------------------------------------------------------- flows loading


def _load_option(check: _Check, raw: Any, entry: str) -> Option | None:
    if not check.fields(raw, entry, ("id", "label"), ("keywords",)):
        return None
    ident = check.ident(raw, entry, "id", OPTION_ID, 20)
    label = check.text(raw, entry, "label", max_len=LABEL_MAX)
    keywords = check.strings(raw, entry, "keywords")
    return Option(ident, label, keywords)


def _load_question(check: _Check, raw: Any, entry: str) -> Question | None:
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
        option_entry = _entry_name(raw_option, f"option n°{index + 1}", entry)
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


def _load_step(check: _Check, raw: Any, entry: str, topic_ids: set[str]) -> Step | None:
    if not check.fields(raw, entry, ("id", "title", "questions"), ("topic",)):
        return None
    ident = check.ident(raw, entry, "id", ENTRY_ID, 24)
    title = check.text(raw, entry, "title")
    topic = raw.get("topic")
    if topic is not None and (not isinstance(topic, str) or topic not in topic_ids):
        check.add(f"sujet « {topic} » inconnu de topics.yaml", entry, "topic")
    questions = []
    for index, raw_question in enumerate(check.items(raw, entry, "questions")):
        question = _load_question(check, raw_question, _entry_name(raw_question, f"question n°{index + 1}", entry))
        if question is not None:
            questions.append(question)
    return Step(ident, title, topic, tuple(questions))


def _load_comparison(check: _Check, raw: Any, entry: str, chapters: set[str]) -> Comparison | None:
    if not check.fields(raw, entry, ("title", "chapter", "columns", "rows")):
        return None
    title = check.text(raw, entry, "title")
    chapter = check.chapter(raw, entry, "chapter", chapters)
    columns: list[tuple[str, str]] = []
    raw_columns = check.items(raw, entry, "columns")
    if raw_columns and len(raw_columns) < 2:
        check.add("au moins deux colonnes sont attendues", entry, "columns")
    for index, raw_column in enumerate(raw_columns):
        column_entry = _entry_name(raw_column, f"colonne n°{index + 1}", entry)
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
    check = _Check(path)
    raw = _read(path)
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
        step = _load_step(check, raw_step, _entry_name(raw_step, f"étape n°{index + 1}"), topic_ids)
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


# --------------------------------------------------------------------------- synthesis loading

_ANSWER_OPS = ("is", "in", "has", "lacks", "count_at_least", "count_at_most")
_KEY_OPS = ("answered", "skipped")
_GROUP_OPS = ("all", "any")


def _parse_condition(
    check: _Check, raw: Any, entry: str, field: str, questions: Mapping[str, Question]
) -> Condition | None:
    """Parses one ``when`` node; reports problems under ``field`` (e.g. ``when.all[2]``)."""
    if not isinstance(raw, dict) or not raw:
        check.add("condition attendue : un dictionnaire (voir docs/formats.md)", entry, field)
        return None
    if "answer" in raw:
        ops = [name for name in raw if name != "answer"]
        if len(ops) != 1 or ops[0] not in _ANSWER_OPS:
            check.add(
                f"avec « answer », un seul opérateur parmi {', '.join(_ANSWER_OPS)} est attendu "
                f"(trouvé : {', '.join(map(str, ops)) or 'aucun'})",
                entry,
                field,
            )
            return None
        op = ops[0]
        key = raw["answer"]
        question = questions.get(key) if isinstance(key, str) else None
        if question is None:
            check.add(f"réponse « {key} » inconnue : aucune question de parcours n’a cet identifiant", entry, field)
            return None
        operand = raw[op]
        if op in ("is", "in"):
            if question.kind != "single":
                check.add(f"« {op} » s’applique à une question à choix unique ; « {key} » est à choix multiple", entry, field)
                return None
            values = operand if op == "in" else [operand]
            if op == "in" and (not isinstance(operand, list) or not operand):
                check.add("« in » attend une liste non vide d’options", entry, field)
                return None
        elif op in ("has", "lacks"):
            if question.kind != "multiple":
                check.add(f"« {op} » s’applique à une question à choix multiple ; « {key} » est à choix unique", entry, field)
                return None
            values = [operand]
        else:
            if question.kind != "multiple":
                check.add(f"« {op} » s’applique à une question à choix multiple ; « {key} » est à choix unique", entry, field)
                return None
            if not isinstance(operand, int) or isinstance(operand, bool) or not 0 <= operand <= len(question.options):
                check.add(f"« {op} » attend un nombre entre 0 et {len(question.options)}", entry, field)
                return None
            return Condition(op, key=key, number=operand)
        known = set(question.option_ids)
        bad = [value for value in values if value not in known]
        if bad:
            check.add(
                f"option « {bad[0]} » inconnue pour « {key} » (options : {', '.join(question.option_ids)})",
                entry,
                field,
            )
            return None
        return Condition(op, key=key, values=tuple(values))
    if len(raw) != 1:
        check.add(f"une seule forme de condition par dictionnaire (trouvé : {', '.join(map(str, raw))})", entry, field)
        return None
    (op, operand), = raw.items()
    if op in _KEY_OPS:
        if not isinstance(operand, str) or operand not in questions:
            check.add(f"réponse « {operand} » inconnue : aucune question de parcours n’a cet identifiant", entry, field)
            return None
        return Condition(op, key=operand)
    if op in _GROUP_OPS:
        if not isinstance(operand, list) or not operand:
            check.add(f"« {op} » attend une liste non vide de conditions", entry, field)
            return None
        children = [
            _parse_condition(check, child, entry, f"{field}.{op}[{index + 1}]", questions)
            for index, child in enumerate(operand)
        ]
        if any(child is None for child in children):
            return None
        return Condition(op, children=tuple(children))  # type: ignore[arg-type]
    if op == "not":
        child = _parse_condition(check, operand, entry, f"{field}.not", questions)
        return None if child is None else Condition("not", children=(child,))
    if op == "always":
        if operand is not True:
            check.add("« always » n’accepte que la valeur true", entry, field)
            return None
        return ALWAYS
    check.add(f"forme de condition « {op} » inconnue (voir docs/formats.md)", entry, field)
    return None


def _load_rule(
    check: _Check,
    raw: Any,
    entry: str,
    section_id: str,
    section_keys: set[str],
    questions: Mapping[str, Question],
    chapters: set[str],
    pages: Mapping[str, tuple[int, int]] | None = None,
) -> Rule | None:
    if not check.fields(raw, entry, ("id", "when", "text", "chapter"), ("vigilance", "recommend", "page", "short")):
        return None
    ident = check.ident(raw, entry, "id", ENTRY_ID, 24)
    when = _parse_condition(check, raw["when"], entry, "when", questions) if "when" in raw else None
    if when is not None:
        outside = sorted(when.keys() - section_keys)
        if outside:
            check.add(
                f"la condition lit « {outside[0]} », absente des questions de la section « {section_id} »",
                entry,
                "when",
            )
    text = check.text(raw, entry, "text")
    chapter = check.chapter(raw, entry, "chapter", chapters)
    vigilance = check.strings(raw, entry, "vigilance")
    page = raw.get("page", 0)
    if "page" in raw:
        if isinstance(page, bool) or not isinstance(page, int) or page <= 0:
            check.add("numéro de page entier attendu (par exemple « page: 16 »)", entry, "page")
            page = 0
        elif pages is not None and chapter in pages and not pages[chapter][0] <= page <= pages[chapter][1]:
            first, last = pages[chapter]
            check.add(f"la page {page} n’est pas dans le chapitre {chapter} (p. {first} à {last})", entry, "page")
    short = check.text(raw, entry, "short", max_len=SHORT_MAX) if "short" in raw else ""
    recommend = raw.get("recommend")
    if section_id == FORMALISATION_SECTION:
        if recommend is None:
            check.add(
                f"chaque règle de la section « {FORMALISATION_SECTION} » doit recommander une piste "
                f"({', '.join(RECOMMENDATIONS)})",
                entry,
                "recommend",
            )
        elif recommend not in RECOMMENDATIONS:
            check.add(f"recommandation « {recommend} » inconnue ({', '.join(RECOMMENDATIONS)})", entry, "recommend")
    elif "recommend" in raw:
        check.add(f"« recommend » n’est permis que dans la section « {FORMALISATION_SECTION} »", entry, "recommend")
        recommend = None
    return Rule(
        ident, when or ALWAYS, text, chapter, vigilance, recommend if recommend in RECOMMENDATIONS else None, page, short
    )


def _load_section(
    check: _Check,
    raw: Any,
    entry: str,
    questions: Mapping[str, Question],
    chapters: set[str],
    pages: Mapping[str, tuple[int, int]] | None = None,
) -> Section | None:
    if not check.fields(raw, entry, ("id", "title", "chapter", "questions", "mode", "rules"), ("context", "checklist")):
        return None
    ident = check.ident(raw, entry, "id", ENTRY_ID, 24)
    title = check.text(raw, entry, "title")
    chapter = check.chapter(raw, entry, "chapter", chapters)
    keys: list[str] = []
    for key in check.items(raw, entry, "questions"):
        if not isinstance(key, str) or key not in questions:
            check.add(f"réponse « {key} » inconnue : aucune question de parcours n’a cet identifiant", entry, "questions")
        elif key in keys:
            check.add(f"réponse « {key} » en double", entry, "questions")
        else:
            keys.append(key)
    context: list[str] = []
    for key in check.items(raw, entry, "context") if "context" in raw else []:
        if not isinstance(key, str) or key not in questions:
            check.add(f"réponse « {key} » inconnue : aucune question de parcours n’a cet identifiant", entry, "context")
        elif key in keys or key in context:
            check.add(f"réponse « {key} » en double (déjà dans questions ou context)", entry, "context")
        else:
            context.append(key)
    checklist = _load_checklist(check, raw["checklist"], entry, keys, questions) if "checklist" in raw else None
    mode = raw.get("mode")
    if "mode" in raw and mode not in MODES:
        check.add(f"mode « {mode} » inconnu (all ou first)", entry, "mode")
    rules = []
    for index, raw_rule in enumerate(check.items(raw, entry, "rules")):
        rule_entry = _entry_name(raw_rule, f"règle n°{index + 1}", ident)
        rule = _load_rule(check, raw_rule, rule_entry, ident, set(keys) | set(context), questions, chapters, pages)
        if rule is not None:
            rules.append(rule)
    if ident == FORMALISATION_SECTION and "mode" in raw and mode != "first":
        check.add("la section « formalisation » doit être en mode first (une seule piste)", entry, "mode")
    if ident == NEXT_STEPS_SECTION:
        if "mode" in raw and mode != "all":
            check.add("la section « prochaines_etapes » doit être en mode all", entry, "mode")
        fallbacks = sum(1 for rule in rules if rule.when.op == "always")
        if "rules" in raw and fallbacks < NEXT_STEPS_KEPT:
            check.add(
                f"les prochaines étapes doivent toujours pouvoir en proposer {NEXT_STEPS_KEPT} : "
                f"ajoutez des règles de repli « always: true » (trouvées : {fallbacks})",
                entry,
                "rules",
            )
    return Section(
        ident, title, chapter, tuple(keys), mode if mode in MODES else "all", tuple(rules), tuple(context), checklist
    )


def _load_checklist(
    check: _Check, raw: Any, entry: str, keys: list[str], questions: Mapping[str, Question]
) -> Checklist | None:
    field_name = "checklist"
    if not check.mapping(raw, entry, field_name):
        return None
    if not check.fields(raw, f"{entry} › checklist", ("answer", "present", "absent")):
        return None
    key = raw["answer"]
    if key not in keys:
        check.add(f"« {key} » doit être l’une des questions de la section", entry, field_name)
        return None
    if questions[key].kind != "multiple":
        check.add(f"« {key} » doit être une question à choix multiple", entry, field_name)
        return None
    present = check.text(raw, f"{entry} › checklist", "present", max_len=LABEL_MAX)
    absent = check.text(raw, f"{entry} › checklist", "absent", max_len=LABEL_MAX)
    return Checklist(key, present, absent)


def load_synthesis(
    path: Path,
    questions: Mapping[str, Question],
    chapters: set[str],
    pages: Mapping[str, tuple[int, int]] | None = None,
) -> SynthesisRules:
    """Load ``synthesis.yaml``; ``questions`` are all the flows' questions by answer key.

    ``pages`` (chapter → first and last page) lets each rule's ``page`` be checked.

    Raises :class:`KnowledgeErrors` listing every problem found.
    """
    path = Path(path)
    check = _Check(path)
    raw = _read(path)
    if not check.fields(raw, None, ("intro", "recommendations", "sections"), ("short_vigilance",)):
        raise KnowledgeErrors(check.errors)
    intro = check.text(raw, None, "intro")
    labels: dict[str, str] = {}
    raw_labels = raw.get("recommendations")
    if "recommendations" in raw and check.mapping(raw_labels, None, "recommendations"):
        for value in RECOMMENDATIONS:
            if value not in raw_labels:
                check.add("libellé manquant pour cette piste", value, "recommendations")
        for value in raw_labels:
            if value not in RECOMMENDATIONS:
                check.add(f"piste « {value} » inconnue ({', '.join(RECOMMENDATIONS)})", str(value), "recommendations")
            else:
                labels[value] = check.text(raw_labels, value, value)
    sections: list[Section] = []
    for index, raw_section in enumerate(check.items(raw, None, "sections")):
        section = _load_section(
            check, raw_section, _entry_name(raw_section, f"section n°{index + 1}"), questions, chapters, pages
        )
        if section is not None:
            sections.append(section)
    section_ids: set[str] = set()
    rule_ids: set[str] = set()
    for section in sections:
        if section.id in section_ids:
            check.add(f"section « {section.id} » en double", section.id, "id")
        section_ids.add(section.id)
        for rule in section.rules:
            if rule.id in rule_ids:
                check.add(f"règle « {rule.id} » en double (identifiant unique dans tout le fichier)", rule.id, "id")
            rule_ids.add(rule.id)
    if "sections" in raw:
        for required in (FORMALISATION_SECTION, NEXT_STEPS_SECTION):
            if required not in section_ids:
                check.add(f"la section « {required} » est obligatoire", required, "sections")
    short_vigilance = check.strings(raw, None, "short_vigilance", optional=True) if "short_vigilance" in raw else ()
    for section_id in short_vigilance:
        if section_id not in section_ids:
            check.add(f"section « {section_id} » inconnue", None, "short_vigilance")
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return SynthesisRules(intro, labels, tuple(sections), dict(questions), tuple(short_vigilance))

"""Load and validate the synthesis rules (``synthesis.yaml``) against the flows' questions.

Every problem is reported as a :class:`KnowledgeError` naming the file, the
entry and the field; all the problems found in one pass are raised together.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from knowledge.errors import KnowledgeErrors
from knowledge.flows import (
    ALWAYS,
    ENTRY_ID,
    FORMALISATION_SECTION,
    LABEL_MAX,
    MODES,
    NEXT_STEPS_KEPT,
    NEXT_STEPS_SECTION,
    RECOMMENDATIONS,
    SHORT_MAX,
    Checklist,
    Condition,
    Conflict,
    Contradiction,
    Presupposition,
    Question,
    Rule,
    Section,
    SynthesisRules,
)
from knowledge.validation import Collector, entry_name, read_yaml

_ANSWER_OPS = ("is", "in", "has", "lacks", "count_at_least", "count_at_most")
_KEY_OPS = ("answered", "skipped")
_GROUP_OPS = ("all", "any")


def _parse_condition(
    check: Collector, raw: Any, entry: str, field: str, questions: Mapping[str, Question]
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
    check: Collector,
    raw: Any,
    entry: str,
    section_id: str,
    section_keys: set[str],
    questions: Mapping[str, Question],
    chapters: set[str],
    pages: Mapping[str, tuple[int, int]] | None = None,
) -> Rule | None:
    if not check.fields(raw, entry, ("id", "when", "text", "chapter"), ("vigilance", "recommend", "page", "short", "assumes")):
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
    assumes = _load_assumes(check, raw["assumes"], entry, section_id, questions) if "assumes" in raw else None
    return Rule(
        ident,
        when or ALWAYS,
        text,
        chapter,
        vigilance,
        recommend if recommend in RECOMMENDATIONS else None,
        page,
        short,
        assumes,
    )


def _routes(check: Collector, raw: Any, entry: str, field: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or any(value not in RECOMMENDATIONS for value in raw):
        check.add(f"liste de pistes attendue, parmi {', '.join(RECOMMENDATIONS)}", entry, field)
        return ()
    return tuple(raw)


def _load_assumes(
    check: Collector, raw: Any, entry: str, section_id: str, questions: Mapping[str, Question]
) -> Presupposition | None:
    """``assumes: {route: [...], answers: CONDITION}``: what the statement takes for granted."""
    if not check.fields(raw, entry, (), ("route", "answers"), strict=True):
        return None
    if not raw:
        check.add("« assumes » vide : donnez « route » et/ou « answers »", entry, "assumes")
        return None
    routes: tuple[str, ...] = ()
    if "route" in raw:
        if section_id == FORMALISATION_SECTION:
            check.add("une règle de la section formalisation donne la piste : elle ne peut pas la supposer", entry, "assumes.route")
        else:
            routes = _routes(check, raw["route"], entry, "assumes.route")
    answers = _parse_condition(check, raw["answers"], entry, "assumes.answers", questions) if "answers" in raw else None
    return Presupposition(routes, answers)


def _load_conflicts(check: Collector, raw: Any, questions: Mapping[str, Question]) -> list[Conflict]:
    conflicts: list[Conflict] = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        entry = entry_name(item, f"conflit n°{index + 1}", "conflicts")
        if not check.fields(item, entry, ("id", "when", "text", "revisit"), strict=True):
            continue
        ident = check.ident(item, entry, "id", ENTRY_ID, 24)
        when = _parse_condition(check, item["when"], entry, "when", questions)
        text = check.text(item, entry, "text")
        revisit = item["revisit"]
        if not isinstance(revisit, list) or not revisit or any(key not in questions for key in revisit):
            check.add("liste de questions à revoir attendue (identifiants de questions)", entry, "revisit")
            continue
        if when is not None and not set(revisit) <= when.keys():
            check.add("chaque question à revoir doit être lue par la condition", entry, "revisit")
            continue
        if when is not None:
            conflicts.append(Conflict(ident, when, text, tuple(revisit)))
    if not isinstance(raw, list):
        check.add("liste attendue", None, "conflicts")
    return conflicts


def _load_contradictions(
    check: Collector, raw: Any, questions: Mapping[str, Question], rule_ids: set[str]
) -> list[Contradiction]:
    found: list[Contradiction] = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        entry = entry_name(item, f"contradiction n°{index + 1}", "contradictions")
        if not check.fields(item, entry, ("id", "why"), ("shown", "route", "when"), strict=True):
            continue
        ident = check.ident(item, entry, "id", ENTRY_ID, 24)
        shown = item.get("shown", [])
        if not isinstance(shown, list) or any(rule not in rule_ids for rule in shown):
            unknown = [rule for rule in shown if rule not in rule_ids] if isinstance(shown, list) else []
            check.add(f"liste de règles attendue (inconnues : {', '.join(map(str, unknown)) or '?'})", entry, "shown")
            continue
        if not shown and "route" not in item and "when" not in item:
            check.add("une contradiction nomme des règles, une piste ou une condition", entry, "shown")
            continue
        routes = _routes(check, item["route"], entry, "route") if "route" in item else ()
        when = _parse_condition(check, item["when"], entry, "when", questions) if "when" in item else None
        why = check.text(item, entry, "why")
        if "route" in item and not routes or "when" in item and when is None:
            continue
        found.append(Contradiction(ident, tuple(shown), routes, when, why))
    if not isinstance(raw, list):
        check.add("liste attendue", None, "contradictions")
    return found


def _load_section(
    check: Collector,
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
        rule_entry = entry_name(raw_rule, f"règle n°{index + 1}", ident)
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
    check: Collector, raw: Any, entry: str, keys: list[str], questions: Mapping[str, Question]
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
    check = Collector(path)
    raw = read_yaml(path)
    if not check.fields(
        raw, None, ("intro", "recommendations", "sections"), ("short_vigilance", "conflicts", "contradictions")
    ):
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
            check, raw_section, entry_name(raw_section, f"section n°{index + 1}"), questions, chapters, pages
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
    conflicts = _load_conflicts(check, raw["conflicts"], questions) if "conflicts" in raw else []
    contradictions = (
        _load_contradictions(check, raw["contradictions"], questions, rule_ids) if "contradictions" in raw else []
    )
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return SynthesisRules(
        intro,
        labels,
        tuple(sections),
        dict(questions),
        tuple(short_vigilance),
        tuple(conflicts),
        tuple(contradictions),
    )

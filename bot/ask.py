"""``ptce-bot ask``: the reply a new user gets to a first message, from the same reading as the chat.

The message goes through :class:`dialogue.understanding.reading.Reader` (spelling, small
talk, tools and things named, gaps, glossary, the matcher's tiers), and the reply is worded
by the same functions as the engine's, without buttons (their labels are listed instead).
``--explain`` prints each step of the reading and the scores behind it.
"""

from __future__ import annotations

from dialogue.texts import topic_answer
from dialogue.understanding import texts
from dialogue.understanding.reading import Reader, Reading
from knowledge.loader import KnowledgeBase


def reply_text(kb: KnowledgeBase, reading: Reading) -> str:
    """What the chat answers to ``reading`` as a first message, as plain text."""
    body = _body(kb, reading)
    if reading.spelling.much and reading.decision != "small_talk":
        body = f"{texts.understood_note(reading)}\n\n{body}"
    return body


def _body(kb: KnowledgeBase, reading: Reading) -> str:
    talk = kb.conversation
    if reading.decision == "small_talk" and reading.intent is not None:
        reply = talk.intents[reading.intent].replies[0]
        contact = kb.topics.get(talk.contact_topic)
        if reading.intent == "human" and contact is not None:
            return f"{reply}\n\n{topic_answer(kb, contact)}"
        return str(reply)
    if reading.decision == "tool" and reading.tool is not None:
        return texts.tool_text(reading.tool)
    if reading.decision == "compare" and reading.compare is not None:
        left, right = (kb.topics[t] for t in reading.compare)
        return texts.compare_text(kb, left, right)
    if reading.decision == "gap" and reading.gap is not None:
        return texts.gap_text(kb, reading.gap)
    if reading.decision == "glossary" and reading.term is not None:
        term = reading.term
        if term.topic and term.topic in kb.topics and reading.term.topic in Reader.for_knowledge(kb).main_topics:
            return topic_answer(kb, kb.topics[term.topic])
        return f"**{term.term}** : {term.definition}" + (f"\n\nDéfinition générale, hors document : {term.general}" if term.general else "")
    match = reading.match
    assert match is not None
    if match.tier == "declined":
        closest = ", ".join(f"« {kb.topics[c.topic].label} »" for c in match.alternatives[:3])
        return talk.texts["declined"][0] + (f" {closest}" if closest else "")
    assert match.topic is not None
    if match.tier == "suggest":
        options = [match.topic, *(c.topic for c in match.alternatives[:2])]
        return talk.texts["suggest"][0] + "\n" + "\n".join(f"→ {kb.topics[t].label}" for t in options)
    answer = topic_answer(kb, kb.topics[match.topic])
    if match.tier == "hedged":
        others = ", ".join(f"« {kb.topics[c.topic].label} »" for c in match.alternatives[:2])
        return f"{talk.texts['hedged'][0]}\n\n{answer}\n\nAutres sujets proches : {others}."
    return answer


def explanation(reader: Reader, reading: Reading) -> list[str]:
    """The reading's steps, then the two scorers side by side for the content."""
    lines = [f"{number}. {step}" for number, step in enumerate(reading.steps, start=1)]
    if reading.match is not None:
        content = reading.content
        learned = sorted(reader.matcher.learned(content).items(), key=lambda item: -item[1])[:3]
        if learned:
            lines.append("   modèle appris : " + ", ".join(f"{topic} {p:.2f}" for topic, p in learned))
        alone = reader.matcher.scorer_only().match(content)
        ranked = [c for c in ((alone.topic, alone.score),) if c[0]] + [(c.topic, c.score) for c in alone.alternatives[:2]]
        lines.append(f"   score seul : {alone.tier} ; " + ", ".join(f"{t} {s:.2f}" for t, s in ranked))
    return lines


def gap_problems(kb: KnowledgeBase) -> tuple[int, list[str]]:
    """(gaps checked, problems): a gap's own examples that it misses, and example questions of
    topics (covered by the document) that a gap would call missing."""
    reader = Reader.for_knowledge(kb)
    problems: list[str] = []
    gaps = reader.gaps.all()
    for gap in gaps:
        for example in gap.examples:
            reading = reader.read(example)
            if reading.gap != gap:
                got = f"{reading.decision} {reading.gap.topic_id if reading.gap else reading.match.topic if reading.match else ''}"
                problems.append(f"{gap.topic_id} : l’exemple « {example} » n’atteint pas « {gap.about[:50]}… » (obtenu : {got})")
    for topic in kb.topics.values():
        for question in topic.questions:
            reading = reader.read(question)
            if reading.gap is not None:
                problems.append(
                    f"{topic.id} : la question couverte « {question} » déclenche le manque de {reading.gap.topic_id} "
                    f"(« {reading.gap.about[:50]}… »)"
                )
    return len(gaps), problems

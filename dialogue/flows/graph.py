"""Draw the conversation flows with transitions' Mermaid support."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transitions.extensions.diagrams import GraphMachine

from dialogue.flows.machine import CONFIRM_FORGET, CONFIRM_RESTART, GLOSSARY, MENU, TOPIC, FlowMachine, done_state
from knowledge.loader import KnowledgeBase


class _Drawing:
    """A throwaway model: diagrams are drawn from a model's view of the machine."""

    # The GraphMachine binds ``get_graph`` to it (and refuses a model that already has one).


def mermaid(kb: KnowledgeBase, flow_id: str) -> str:
    """Mermaid state diagram of one flow (menu, its questions, its end)."""
    fsm = FlowMachine(kb.flows)
    sequence = fsm.order[flow_id]
    states = [MENU, *sequence, done_state(flow_id)]
    transitions = [{"trigger": "start", "source": MENU, "dest": sequence[0]}]
    for index, state in enumerate(sequence):
        following = sequence[index + 1] if index + 1 < len(sequence) else done_state(flow_id)
        transitions.append({"trigger": "next / skip", "source": state, "dest": following})
        if index:
            transitions.append({"trigger": "back", "source": state, "dest": sequence[index - 1]})
    transitions.append({"trigger": "menu", "source": done_state(flow_id), "dest": MENU})
    drawing: Any = _Drawing()  # gains get_graph() from the machine
    GraphMachine(
        model=drawing,
        states=states,
        transitions=transitions,
        initial=MENU,
        auto_transitions=False,
        graph_engine="mermaid",
        title=kb.flows[flow_id].title,
        show_conditions=False,
    )
    return drawing.get_graph().draw(None)


def overview(kb: KnowledgeBase) -> str:
    """Mermaid diagram of the menu, reading states, confirmations and the entry into each flow."""
    fsm = FlowMachine(kb.flows)
    states = [MENU, TOPIC, GLOSSARY, CONFIRM_FORGET, CONFIRM_RESTART]
    transitions = [
        {"trigger": "read_topic", "source": MENU, "dest": TOPIC},
        {"trigger": "show_menu", "source": TOPIC, "dest": MENU},
        {"trigger": "read_glossary", "source": MENU, "dest": GLOSSARY},
        {"trigger": "/oublier", "source": MENU, "dest": CONFIRM_FORGET},
        {"trigger": "annuler / effacé", "source": CONFIRM_FORGET, "dest": MENU},
        {"trigger": "/recommencer", "source": MENU, "dest": CONFIRM_RESTART},
    ]
    for flow in kb.flows.values():
        finish = done_state(flow.id)
        label = f"{flow.id} ({len(fsm.order[flow.id])} questions)"
        states.extend([label, finish])
        transitions += [
            {"trigger": f"/{flow.id}", "source": MENU, "dest": label},
            {"trigger": "dernière réponse", "source": label, "dest": finish},
            {"trigger": "show_menu", "source": finish, "dest": MENU},
        ]
        if flow.id == "orientation":
            transitions.append({"trigger": "oui, recommencer", "source": CONFIRM_RESTART, "dest": label})
    drawing: Any = _Drawing()  # gains get_graph() from the machine
    GraphMachine(model=drawing, states=states, transitions=transitions, initial=MENU, auto_transitions=False,
                 graph_engine="mermaid", title="Vue d’ensemble")
    return drawing.get_graph().draw(None)


def write_graph(kb: KnowledgeBase, path: Path) -> Path:
    """Write every flow's diagram into one Markdown file."""
    parts = [
        "# Parcours du conseiller (diagrammes générés)\n",
        "Généré par `ptce-bot graph` à partir de `knowledge/data/flows/*.yaml`. Depuis n’importe quel état, "
        "les commandes globales (/menu, /reprendre, /oublier…) restent disponibles.\n",
    ]
    parts.append(f"## Vue d’ensemble\n\n```mermaid\n{overview(kb).strip()}\n```\n")
    for flow in sorted(kb.flows.values(), key=lambda f: f.id != "orientation"):
        parts.append(f"## {flow.title}\n\n```mermaid\n{mermaid(kb, flow.id).strip()}\n```\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

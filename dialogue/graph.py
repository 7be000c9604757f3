"""Draw the conversation flows with transitions' Mermaid support."""

from __future__ import annotations

from pathlib import Path

from transitions.extensions.diagrams import GraphMachine

from dialogue.machine import MENU, FlowMachine, done_state
from knowledge.loader import KnowledgeBase


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
    machine = GraphMachine(
        model=None,
        states=states,
        transitions=transitions,
        initial=MENU,
        auto_transitions=False,
        graph_engine="mermaid",
        title=kb.flows[flow_id].title,
        show_conditions=False,
    )
    return machine.get_graph().draw(None)


def write_graph(kb: KnowledgeBase, path: Path) -> Path:
    """Write every flow's diagram into one Markdown file."""
    parts = [
        "# Parcours du conseiller (diagrammes générés)\n",
        "Généré par `ptce-bot graph` à partir de `knowledge/data/flows/*.yaml`. Depuis n’importe quel état, "
        "les commandes globales (/menu, /reprendre, /oublier…) restent disponibles.\n",
    ]
    for flow in kb.flows.values():
        parts.append(f"## {flow.title}\n\n```mermaid\n{mermaid(kb, flow.id).strip()}\n```\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

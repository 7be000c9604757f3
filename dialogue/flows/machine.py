"""The conversation's state machine, compiled once from the flows in YAML.

One ``transitions.Machine`` (``model=None``, no auto transitions) serves every
user: the engine attaches a user's ``Conversation`` for one event with
``add_model(..., initial=saved_state)`` and removes it afterwards. The
callbacks do no I/O; persistence is the engine's job after the transition.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from transitions import Machine

from knowledge.errors import KnowledgeError, KnowledgeErrors
from knowledge.flows import Flow

MENU = "menu"
TOPIC = "topic"
GLOSSARY = "glossary"
CONFIRM_FORGET = "confirm_forget"
CONFIRM_RESTART = "confirm_restart"
BASE_STATES = (MENU, TOPIC, GLOSSARY, CONFIRM_FORGET, CONFIRM_RESTART)
SEPARATOR = "__"


def question_state(flow_id: str, question_id: str) -> str:
    return f"{flow_id}{SEPARATOR}{question_id}"


def done_state(flow_id: str) -> str:
    return f"{flow_id}{SEPARATOR}fin"


def goto_trigger(state: str) -> str:
    return f"goto{SEPARATOR}{state}"


def split_state(state: str) -> tuple[str | None, str | None]:
    """(flow id, question id or 'fin') for a flow state, (None, None) otherwise."""
    if SEPARATOR not in state:
        return None, None
    flow_id, _, rest = state.partition(SEPARATOR)
    return flow_id, rest


@dataclass(frozen=True, slots=True)
class FlowPosition:
    flow_id: str
    question_id: str
    step_index: int  # 0-based
    step_count: int
    question_index: int  # 0-based within the flow
    question_count: int
    first_in_step: bool


def _bound_by_the_machine(*_args: object, **_kwargs: object) -> bool:
    raise RuntimeError("trigger used on a conversation that is not attached to the machine")


class Conversation:
    """The model a user's state is restored into for one event.

    Its triggers are declared here so that they type-check; the machine is built with
    ``model_override=True``, so it binds exactly these names (and nothing else) on attach.
    Per-state goto triggers are dynamic: they go through :meth:`trigger`.
    """

    state: str

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    def trigger(self, name: str) -> bool:
        return _bound_by_the_machine(name)

    def show_menu(self) -> bool:
        return _bound_by_the_machine()

    def read_topic(self) -> bool:
        return _bound_by_the_machine()

    def read_glossary(self) -> bool:
        return _bound_by_the_machine()

    def ask_forget(self) -> bool:
        return _bound_by_the_machine()

    def ask_restart(self) -> bool:
        return _bound_by_the_machine()

    def next(self) -> bool:
        return _bound_by_the_machine()

    def back(self) -> bool:
        return _bound_by_the_machine()


class _SkippedBindings(logging.Filter):
    """With ``model_override`` the machine logs each name it does not bind: that is the design here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "model override policy" not in record.getMessage()


logging.getLogger("transitions.core").addFilter(_SkippedBindings())


class FlowMachine:
    """Builds the shared machine from the flows and answers questions about its graph."""

    def __init__(self, flows: Mapping[str, Flow], source_file: str = "flows") -> None:
        self.flows = flows
        self.positions: dict[str, FlowPosition] = {}
        self.order: dict[str, list[str]] = {}
        states: list[str] = list(BASE_STATES)
        transitions: list[dict] = [
            {"trigger": "show_menu", "source": "*", "dest": MENU},
            {"trigger": "read_topic", "source": "*", "dest": TOPIC},
            {"trigger": "read_glossary", "source": "*", "dest": GLOSSARY},
            {"trigger": "ask_forget", "source": "*", "dest": CONFIRM_FORGET},
            {"trigger": "ask_restart", "source": "*", "dest": CONFIRM_RESTART},
        ]
        for flow in flows.values():
            sequence: list[str] = []
            step_count = len(flow.steps)
            pairs = [(si, step, q) for si, step in enumerate(flow.steps) for q in step.questions]
            for qi, (si, step, question) in enumerate(pairs):
                state = question_state(flow.id, question.id)
                self.positions[state] = FlowPosition(
                    flow.id, question.id, si, step_count, qi, len(pairs), question is step.questions[0]
                )
                sequence.append(state)
            self.order[flow.id] = sequence
            finish = done_state(flow.id)
            states.extend(sequence)
            states.append(finish)
            if sequence:
                transitions.append({"trigger": f"start{SEPARATOR}{flow.id}", "source": "*", "dest": sequence[0]})
            for index, state in enumerate(sequence):
                following = sequence[index + 1] if index + 1 < len(sequence) else finish
                transitions.append({"trigger": "next", "source": state, "dest": following})
                if index:
                    transitions.append({"trigger": "back", "source": state, "dest": sequence[index - 1]})
                transitions.append({"trigger": goto_trigger(state), "source": "*", "dest": state})
            transitions.append({"trigger": goto_trigger(finish), "source": "*", "dest": finish})
        self._free: list[Conversation] = []
        self.states = tuple(states)
        self.state_set = frozenset(states)
        self.machine = Machine(
            model=None,
            states=list(states),
            transitions=transitions,
            initial=MENU,
            auto_transitions=False,
            ignore_invalid_triggers=False,
            model_override=True,
        )
        self._check_graph(source_file)

    def _check_graph(self, source_file: str) -> None:
        """Every state must be reachable from the menu, and every flow must finish."""
        edges: dict[str, set[str]] = {state: set() for state in self.states}
        for event in self.machine.events.values():
            for source, transitions in event.transitions.items():
                for transition in transitions:
                    if transition.dest is not None:
                        edges.setdefault(source, set()).add(transition.dest)
        wildcard_targets = {
            t.dest for e in self.machine.events.values() if "*" in e.transitions for t in e.transitions["*"] if t.dest is not None
        }
        seen = {MENU}
        queue = deque([MENU])
        while queue:
            state = queue.popleft()
            for target in edges.get(state, set()) | wildcard_targets:
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        errors = [
            KnowledgeError(source_file, "étape inaccessible depuis le menu", entry=state)
            for state in self.states
            if state not in seen
        ]
        for flow_id, sequence in self.order.items():
            if not sequence:
                errors.append(KnowledgeError(source_file, "parcours sans question", entry=flow_id, field="steps"))
        if errors:
            raise KnowledgeErrors(errors)

    def attach(self, conversation: Conversation, state: str) -> None:
        self.machine.add_model(conversation, initial=state)

    def detach(self, conversation: Conversation) -> None:
        self.machine.remove_model(conversation)

    def acquire(self, user_id: str, state: str) -> Conversation:
        """A model set to ``state`` for one event, reused from a pool.

        ``add_model`` binds every trigger and ``is_<state>`` method to the model (~0.5 ms
        with our ~40 states); ``set_state`` on an already attached model takes microseconds.
        Each event in flight holds its own model, so this stays correct if events overlap.
        """
        if self._free:
            conversation = self._free.pop()
            conversation.user_id = user_id
            self.machine.set_state(state, model=conversation)
            return conversation
        conversation = Conversation(user_id)
        self.machine.add_model(conversation, initial=state)
        return conversation

    def release(self, conversation: Conversation) -> None:
        """Give back a model taken with :meth:`acquire`."""
        self._free.append(conversation)

    def first_state(self, flow_id: str) -> str:
        return self.order[flow_id][0]

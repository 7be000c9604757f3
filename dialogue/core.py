"""The engine's rooms as one typed object, shared with the features it hosts."""

from __future__ import annotations

from dataclasses import dataclass

from dialogue.clock import Clock
from dialogue.compiled import CompiledKnowledge
from dialogue.flows.runner import FlowRunner
from dialogue.screens import Screens
from dialogue.storage.progress import ProgressStore
from dialogue.topics import Topics


@dataclass(frozen=True)
class Core:
    """The engine's rooms, shared with the features it hosts."""

    knowledge: CompiledKnowledge
    store: ProgressStore
    runner: FlowRunner
    screens: Screens
    topics: Topics
    clock: Clock

"""Where each event goes: the command table, the payload table, and the order of the text pipeline."""

from __future__ import annotations

from collections.abc import Callable

from dialogue import payloads as p
from dialogue.buttons import MENU_BUTTON, label
from dialogue.compiled import FORMES, ORIENTATION, CompiledKnowledge
from dialogue.flows import machine as m
from dialogue.flows.runner import FlowRunner
from dialogue.glossary import Glossary
from dialogue.screens import Screens
from dialogue.topics import Topics
from dialogue.turn import Turn
from dialogue.types import Button, Reply
from dialogue.understanding.answers import Understanding
from knowledge.conversation import has_phrase, pick
from knowledge.text import normalise

#: Longer messages are cut: nothing in the document needs more to be found.
MAX_TEXT = 4000

CommandHandler = Callable[[Turn, str], list[Reply]]
PayloadHandler = Callable[[Turn, p.Payload], list[Reply] | None]


class Router:
    """Sends commands, button payloads and free text to the room that answers them."""

    def __init__(
        self,
        knowledge: CompiledKnowledge,
        screens: Screens,
        runner: FlowRunner,
        topics: Topics,
        glossary: Glossary,
        understanding: Understanding,
        command_names: Callable[[], list[str]],
        absent: Callable[[Turn], bool],
    ) -> None:
        self.knowledge = knowledge
        self.kb = knowledge.kb
        self.talk = knowledge.talk
        self.screens = screens
        self.runner = runner
        self.topics = topics
        self.glossary = glossary
        self.understanding = understanding
        self._command_names = command_names
        self._absent = absent
        self.commands: dict[str, CommandHandler] = {
            "start": self._start,
            "menu": lambda turn, _: self.screens.menu(turn),
            "aide": lambda turn, _: [self.screens.help()],
            "help": lambda turn, _: [self.screens.help()],
            "orientation": lambda turn, _: self.runner.start(turn, ORIENTATION),
            "formes": lambda turn, _: self.runner.start(turn, FORMES),
            "synthese": lambda turn, _: self.runner.results.synthesis(turn),
            "reprendre": lambda turn, _: self.runner.resume(turn),
            "progression": lambda turn, _: [self.runner.results.progress(turn.record)],
            "recommencer": lambda turn, _: self.runner.ask_restart(turn),
            "modifier": self.runner.editor.command,
            "glossaire": lambda turn, _: self.glossary.browse(turn, p.Payload(p.GLOSSARY)),
            "source": lambda turn, _: [self.screens.source()],
            "oublier": self._ask_forget,
        }
        flow_buttons = self.runner.on_button
        self.payloads: dict[str, PayloadHandler] = {
            p.MENU: self._no_args(self.screens.menu),
            p.TOPIC: self._topic_part("short"),
            p.MORE: self._topic_part("more"),
            p.VIGILANCE: self._topic_part("vig"),
            p.INTRO: self._intro,
            p.NOT_THIS: self._no_args(lambda turn: [self.topics.decline(turn)]),
            p.HUMAN: self._no_args(self._human),
            p.FLOW: self._flow,
            p.GLOSSARY: self.glossary.browse,
            p.SOURCE: self._no_args(lambda turn: [self.screens.source()]),
            p.HELP: self._no_args(lambda turn: [self.screens.help()]),
            p.SYNTHESIS: self._no_args(self.runner.results.synthesis),
            p.SYNTHESIS_DETAIL: self.runner.results.synthesis_page,
            p.RESULT: self.runner.results.result_page,
            p.KEEP: self._no_args(self.runner.keep),
            p.EDIT: self.runner.editor.on_button,
            p.RESUME: self._no_args(self.runner.resume),
            p.RESTART: self._no_args(self.runner.ask_restart),
            p.RESTART_CONFIRMED: self._no_args(self._restart_confirmed),
            p.FORGET_CONFIRMED: self._no_args(self._forget_confirmed),
            p.ANSWER: flow_buttons,
            p.TOGGLE: flow_buttons,
            p.VALIDATE: flow_buttons,
            p.SKIP: flow_buttons,
            p.BACK: flow_buttons,
        }

    # ------------------------------------------------------------------ commands

    def command(self, turn: Turn, name: str, argument: str) -> list[Reply]:
        handler = self.commands.get(name)
        if handler is not None:
            return handler(turn, argument)
        names = ", ".join(f"/{n}" for n in self._command_names())
        return [Reply(f"Je ne connais pas la commande /{label(name, 30)}. Commandes disponibles : {names}.", ((MENU_BUTTON,),))]

    def _start(self, turn: Turn, argument: str) -> list[Reply]:
        if argument in self.knowledge.flows:
            return self.runner.start(turn, argument)
        return self.screens.welcome(turn, absent=self._absent(turn))

    def _ask_forget(self, turn: Turn, _argument: str) -> list[Reply]:
        turn.pending = True
        turn.conversation.ask_forget()
        return [
            Reply(
                "Voulez-vous vraiment effacer tout ce que j’ai enregistré à votre sujet (progression, réponses et questions posées) ? "
                "Cette action est définitive.",
                ((Button("Oui, tout effacer", p.FORGET_CONFIRMED), Button("Non, annuler", p.MENU)),),
            )
        ]

    # ------------------------------------------------------------------ buttons

    def choose(self, turn: Turn, data: str) -> list[Reply]:
        payload = p.Payload.decode(data)
        handler = self.payloads.get(payload.kind)
        replies = handler(turn, payload) if handler is not None else None
        return replies if replies is not None else self.runner.stale(turn)

    @staticmethod
    def _no_args(handler: Callable[[Turn], list[Reply] | None]) -> PayloadHandler:
        return lambda turn, payload: None if payload.args else handler(turn)

    def _topic_part(self, part: str) -> PayloadHandler:
        def open_topic(turn: Turn, payload: p.Payload) -> list[Reply] | None:
            topic = self.kb.topics.get(payload.arg(0)) if len(payload.args) == 1 else None
            if topic is None or (part == "vig" and not topic.vigilance):
                return None
            return self.topics.open(turn, topic.id, part)

        return open_topic

    def _intro(self, turn: Turn, payload: p.Payload) -> list[Reply] | None:
        intro = next((q for q in self.kb.document.intro_questions if (q.id,) == payload.args), None)
        return self.topics.show(turn, intro.topics[0]) if intro else None

    def _flow(self, turn: Turn, payload: p.Payload) -> list[Reply] | None:
        flow_id = payload.arg(0)
        return self.runner.start(turn, flow_id) if len(payload.args) == 1 and flow_id in self.knowledge.flows else None

    def _human(self, turn: Turn) -> list[Reply]:
        return self.topics.contacts(turn, pick(self.talk.intents["human"].replies, turn.count("human")))

    def _restart_confirmed(self, turn: Turn) -> list[Reply] | None:
        return self.runner.restart(turn) if turn.state == m.CONFIRM_RESTART else None

    def _forget_confirmed(self, turn: Turn) -> list[Reply] | None:
        if turn.state != m.CONFIRM_FORGET:
            return None
        turn.forget = True
        turn.conversation.show_menu()
        return [Reply("C’est fait : toutes vos données ont été effacées. Écrivez /start pour recommencer quand vous voulez.")]

    # ------------------------------------------------------------------ free text

    def say(self, turn: Turn, text: str, choose: Callable[[Turn, str], list[Reply]]) -> list[Reply]:
        """Free text, in this order: a button typed, menu/help words, an answer to the step on
        screen, small talk, the orientation asked for by name, then a question."""
        record = turn.record
        plain = normalise(text)
        flow_state = turn.state
        position = self.runner.position(flow_state)
        words = self.talk.words
        # A visible button typed by name acts as the button, wherever the user is.
        payload = self.screens.typed_button(record, plain, flow_state)
        if payload is not None:
            return choose(turn, payload)
        if plain in words["menu_words"]:
            return self.screens.menu(turn)
        if plain in words["help_words"]:
            return [self.screens.help()] + ([self.runner.question(record, flow_state)] if position is not None else [])
        if self.runner.editor.wants(turn, plain):  # « je voudrais changer ma réponse sur la maturité »
            return self.runner.editor.request(turn, plain)
        if position is not None:
            handled = self.runner.answer_by_text(turn, text)
            if handled is not None:
                return handled
        # One reading of the message (the same as ``ptce-bot ask``): spelling, small talk, what is
        # named, then context; the understanding turns its decision into replies.
        reading = self.understanding.read(turn, text)
        small_talk = self.understanding.small_talk(turn, reading)
        tool = self.understanding.tool(turn, reading, self._command_names()) if reading.decision == "tool" else None
        if small_talk is not None:
            replies = small_talk
        elif tool is not None:
            return tool
        elif position is None and has_phrase(plain, self.talk.orientation_intents):
            return self.runner.start(turn, ORIENTATION)
        else:
            replies = self.understanding.answer(turn, reading)
        if position is not None:
            if turn.state != flow_state:  # a follow-up read inside a flow: the user stays on the question
                turn.conversation.trigger(m.goto_trigger(flow_state))
            replies.append(self.runner.question(record, turn.state))
        elif turn.missed and self.screens.pending_buttons(record):
            # The user was choosing: keep those choices on screen rather than only a Menu button.
            replies = [Reply(pick(self.talk.texts["not_understood_choice"], turn.count("nc")), self.screens.pending_buttons(record))]
            turn.pending = True
        return replies

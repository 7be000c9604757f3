"""The team behind the bot, as the user sees it: 👍 / 👎 after answers, and hand-over to a person.

The engine calls this class at a few points (free question matched, text
typed, ``tm:`` button pressed, start of each event); all texts and the small
state it needs (kept in the user's context under ``team``) live here.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialogue.buttons import MENU_BUTTON as MENU
from dialogue.features.team.handovers import MAX_QUESTION, HandoverBusy, HandoverLimit, HandoverStore
from dialogue.features.team.question_log import LoggedQuestion, QuestionLog
from dialogue.payloads import Payload, encode
from dialogue.storage.progress import UserRecord
from dialogue.types import Button, Reply, literal
from knowledge.loader import KnowledgeBase
from knowledge.text import normalise

CONTACT_TOPIC = "accompagnement.se_faire_accompagner"
#: The back cover of the reference document, used when the contact topic is not in the knowledge base.
FALLBACK_CONTACTS = (
    "Le document donne les coordonnées de son auteur (ce ne sont pas celles de ce conseiller) :\n"
    "Institut Godin — 21 rue François Génin, 80000 Amiens\n"
    "- Téléphone : 03 22 72 49 53\n"
    "- Courriel : contact@institutgodin.fr\n"
    "- Site : institutgodin.com"
)
#: The team's button kind: ``tm:+:TOPIC`` / ``tm:-:TOPIC`` (👍/👎), ``tm:h`` (hand over), ``tm:h1``, ``tm:h3``, ``tm:hw``.
PAYLOAD_KIND = "tm"
OFFER_BUTTON = Button("Transmettre ma question à l’équipe", encode(PAYLOAD_KIND, "h"))
FEEDBACK_THANKS = "Merci pour votre retour !"
ASK_MISSING = (
    "Merci de nous le dire. Qu’est-ce qui manquait ? Écrivez-le en quelques mots si vous le souhaitez "
    "(c’est facultatif) : l’équipe qui tient ce conseiller le lira."
)
OFFER = (
    "Je peux transmettre votre question à l’équipe qui accompagne ce service : une personne vous répondra ici. "
    "Rien n’est envoyé sans votre accord."
)
OFFER_LATER = (
    "Je peux aussi laisser votre question à l’équipe qui tient ce service : elle pourra vous répondre ici plus "
    "tard. Rien n’est envoyé sans votre accord."
)
NO_TEAM = (
    "Aucun conseiller n’est joignable directement depuis cette conversation. Votre question est tout de même "
    "enregistrée pour l’équipe, qui pourra vous répondre ici plus tard."
)
#: The operator's own contact (configuration, never the knowledge): « L’équipe qui tient ce service : … ».
OPERATOR = "L’équipe qui tient ce service : {contact}"
AUTHOR_BUTTON = "Coordonnées de l’auteur du document"
LIMIT = (
    "Vous avez déjà trois questions en attente auprès de l’équipe. Attendez une réponse avant d’en transmettre "
    "une nouvelle, s’il vous plaît."
)
BUSY = (
    "L’équipe a reçu beaucoup de questions dans l’heure : la vôtre n’a pas été transmise. "
    "Réessayez un peu plus tard, ou contactez directement :"
)
ASK_QUESTION = "Écrivez la question que vous voulez transmettre à l’équipe (en un seul message)."
COMMENT_THANKS = "Merci, c’est noté pour l’équipe."


@dataclass(frozen=True, slots=True)
class TeamServices:
    """What the team features need: the log (None when switched off) and the hand-over queue."""

    log: QuestionLog | None
    handovers: HandoverStore | None
    #: True when a team chat is configured (Telegram); otherwise the bot gives the document's contacts.
    team_chat: bool = False
    #: How to reach the team that runs this service (``PTCE_TEAM_CONTACT``): shown before the
    #: document author's address, which is never presented as this service's help line.
    operator_contact: str = ""


class TeamFlow:
    def __init__(self, kb: KnowledgeBase, services: TeamServices) -> None:
        self.kb = kb
        self.services = services

    # ------------------------------------------------------------------ state

    @staticmethod
    def _state(record: UserRecord) -> dict:
        return record.context.feature("team")

    def note_message(self, record: UserRecord, text: str) -> None:
        """Remember the user's last three messages, in case they want to pass them on."""
        state = self._state(record)
        recent = state.get("recent", [])[-2:]
        recent.append(text[:300])
        state["recent"] = recent

    # ------------------------------------------------------------------ delivery of team answers

    def pending_answers(self, user_id: str) -> list[Reply]:
        """Team answers not yet shown to this user (answered from the command line)."""
        store = self.services.handovers
        if store is None or (self.services.team_chat and user_id.startswith("tg:")):
            return []  # with a team chat, the channel delivers them itself (once, through its outbox)
        replies = []
        for item in store.undelivered(user_id):
            replies.append(Reply(answer_text(item.ref, item.question, item.answer or "")))
            store.mark_delivered(item.ref)
        return replies

    # ------------------------------------------------------------------ question log

    def log_question(
        self, record: UserRecord, text: str, match, *, tier: str | None = None, flow: str | None = None, step: str | None = None
    ) -> None:
        """Log a matched free question and remember it for feedback and hand-over."""
        state = self._state(record)
        tier = tier or self._tier(match, normalise(text))
        alternatives = [c.topic for c in match.alternatives if c.topic != match.topic]
        entry = LoggedQuestion(
            text=normalise(text),
            topic=match.topic,
            runner_up=alternatives[0] if alternatives else None,
            score=float(match.score),
            tier=tier,
            flow=flow,
            step=step,
        )
        if self.services.log:
            self.services.log.log(record.id, entry)
        state["last_topic"] = match.topic
        state["last_q"] = text[:MAX_QUESTION]
        state["next"] = alternatives[:2]
        state["declines"] = state.get("declines", 0) + 1 if tier == "declined" else 0
        state.pop("awaiting", None)

    def log_glossary(self, record: UserRecord, text: str, *, flow: str | None = None, step: str | None = None) -> None:
        """A question answered by the glossary: logged as a confident answer without topic."""
        from knowledge.matcher import Match

        self.log_question(record, text, Match(None, 1.0, (), False), tier="confident", flow=flow, step=step)

    def _tier(self, match, plain: str) -> str:
        """The matcher's tier. « not_covered » comes from the understanding's reading (the kind of the
        question asked), which knows a gap by its kind of fact too: a trigger alone (« ptce ») is not one."""
        return match.tier

    def feedback_row(self, record: UserRecord) -> tuple[Button, ...]:
        # The topic, not the log row id, identifies the answer: payloads and replies then do not
        # depend on the order in which concurrent users' questions were logged.
        topic = self._state(record).get("last_topic") or ""
        return (Button("👍", encode(PAYLOAD_KIND, "+", topic)), Button("👎", encode(PAYLOAD_KIND, "-", topic)))

    def after_decline(self, record: UserRecord) -> list[Reply]:
        """Two declined questions in a row: offer a person."""
        if self._state(record).get("declines", 0) >= 2:
            return [Reply(OFFER, ((OFFER_BUTTON,), (Button("Non merci", "m"),)))]
        return []

    # ------------------------------------------------------------------ typed text

    def intercept(self, record: UserRecord, text: str) -> list[Reply] | None:
        """Handle text meant for the team features; None lets the engine answer it."""
        state = self._state(record)
        plain = text.strip()
        awaiting = state.pop("awaiting", None)
        if plain in {"+", "-"} and "last_q" in state:
            return self._feedback(record, 1 if plain == "+" else -1, None)
        if awaiting == "comment" and not plain.endswith("?"):  # a new question is answered, not taken as a comment
            if self.services.log:
                self.services.log.comment(record.id, plain)
            return [Reply(COMMENT_THANKS, ((MENU,),))]
        if awaiting == "question":
            state["last_q"] = plain[:MAX_QUESTION]
            return [self._consent(record)]
        normalised = normalise(plain)
        if any(phrase in normalised for phrase in self.kb.conversation.words["handover_phrases"]):
            return [self.handover_offer()]
        return None

    def handover_offer(self) -> Reply:
        """A person asked for: the operator's team first — its chat when one answers, its contact when
        configured — and otherwise the document author's contacts, presented as the author's."""
        operator = self.services.operator_contact
        author = (Button(AUTHOR_BUTTON, "human"),)
        if self.services.team_chat:
            text = f"{OFFER}\n\n{OPERATOR.format(contact=operator)}" if operator else OFFER
            return Reply(text, ((OFFER_BUTTON,), author, (Button("Non merci", "m"),)))
        if operator:
            rows = ((OFFER_BUTTON,), author, (Button("Non merci", "m"),))
            if self.services.handovers is None:
                return Reply(OPERATOR.format(contact=operator), (author, (MENU,)))
            return Reply(f"{OPERATOR.format(contact=operator)}\n\n{OFFER_LATER}", rows)
        if self.services.handovers is None:
            return Reply(f"{self.contacts()}", ((MENU,),))
        return Reply(
            f"{self.contacts()}\n\n{OFFER_LATER}", ((OFFER_BUTTON,), (Button("Non merci", "m"),))
        )

    # ------------------------------------------------------------------ buttons

    @staticmethod
    def moved_on(record: UserRecord) -> None:
        """Another button or a command: the user's next text is a question again, not a comment."""
        record.context.feature("team").pop("awaiting", None)

    def on_choose(self, record: UserRecord, payload: str) -> list[Reply] | None:
        """``tm:`` payloads; None when the payload is not ours or is malformed."""
        decoded = Payload.decode(payload)
        if decoded.kind != PAYLOAD_KIND:
            self.moved_on(record)
            return None
        state = self._state(record)
        args = decoded.args
        if len(args) == 2 and args[0] in {"+", "-"} and (args[1] in self.kb.topics or not args[1]):
            return self._feedback(record, 1 if args[0] == "+" else -1, args[1] or None)
        if args == ("h",):
            if not state.get("last_q"):
                state["awaiting"] = "question"
                return [Reply(ASK_QUESTION, ((MENU,),))]
            return [self._consent(record)]
        if args == ("hw",):
            state["awaiting"] = "question"
            return [Reply(ASK_QUESTION, ((MENU,),))]
        if args in (("h1",), ("h3",)):
            return self._hand_over(record, with_recent=args[0] == "h3")
        return None

    def _feedback(self, record: UserRecord, value: int, topic: str | None) -> list[Reply]:
        """On the latest question answered by ``topic`` (button), or the latest question (« + » / « - » typed)."""
        state = self._state(record)
        if self.services.log:
            self.services.log.feedback(record.id, value, topic)
        if value > 0:
            state["downs"] = 0
            return [Reply(FEEDBACK_THANKS)]
        state["downs"] = state.get("downs", 0) + 1
        state["awaiting"] = "comment"
        rows: list[tuple[Button, ...]] = []
        for topic_id in state.get("next", [])[:2]:
            related = self.kb.topics.get(topic_id)
            if related is not None:
                rows.append((Button(_short("→ " + related.title), f"t:{topic_id}"),))
        if state["downs"] >= 2:
            rows.append((OFFER_BUTTON,))
        rows.append((MENU,))
        return [Reply(ASK_MISSING, tuple(rows))]

    def _consent(self, record: UserRecord) -> Reply:
        question = self._state(record).get("last_q", "")
        return Reply(
            f"Voici la question que je transmettrai à l’équipe :\n« {question} »\n\n"
            "Voulez-vous joindre aussi vos trois derniers messages, pour le contexte ?",
            (
                (Button("Oui, avec mes derniers messages", encode(PAYLOAD_KIND, "h3")),),
                (Button("Seulement la question", encode(PAYLOAD_KIND, "h1")),),
                (Button("Écrire une autre question", encode(PAYLOAD_KIND, "hw")),),
                (Button("Annuler", "m"),),
            ),
        )

    def _hand_over(self, record: UserRecord, *, with_recent: bool) -> list[Reply]:
        state = self._state(record)
        question = state.get("last_q")
        store = self.services.handovers
        if not question or store is None:
            return [Reply("Ce choix n’est plus valable.", ((MENU,),))]
        recent = [m for m in state.get("recent", []) if m != question][-3:] if with_recent else []
        try:
            store.create(record.id, question, recent)
        except HandoverLimit:
            return [Reply(LIMIT, ((MENU,),))]
        except HandoverBusy:
            return [Reply(f"{BUSY}\n\n{self.contacts()}", ((MENU,),))]
        state["downs"] = 0
        state["declines"] = 0
        # No reference number here: the user's replies must not depend on other users' activity
        # (the team sees the number; the answer, when it comes, quotes the question).
        done = "C’est transmis à l’équipe."
        if self.services.team_chat:
            return [Reply(f"{done} Une personne de l’équipe vous répondra ici dès que possible.", ((MENU,),))]
        operator = self.services.operator_contact
        if operator:
            return [Reply(f"{done} {NO_TEAM}\n\n{OPERATOR.format(contact=operator)}", ((MENU,),))]
        return [Reply(f"{done} {NO_TEAM}\n\n{self.contacts()}", ((MENU,),))]

    def contacts(self) -> str:
        topic = self.kb.topics.get(CONTACT_TOPIC)
        if topic is not None:
            return f"{topic.short}\n\n({self.kb.cite(topic)})"
        return FALLBACK_CONTACTS


def answer_text(ref: int, question: str, answer: str) -> str:
    # The advisor's text is shown as typed: a bare address stays visible, never hidden behind a label.
    return f"**Réponse de l’équipe** (référence n° {ref}, « {literal(_short(question, 80))} ») : {literal(answer)}"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def privacy_help(log: QuestionLog | None) -> str:
    """« Vos données » in /aide: what is kept, for how long, how to erase it."""
    if log is not None and log.enabled:
        questions = (
            "- Les questions que vous écrivez, sans votre nom ni votre identifiant (remplacé par un code), "
            f"avec vos 👍 / 👎 : l’équipe s’en sert pour améliorer les réponses. Elles sont effacées au bout de {log.retention_days} jours.\n"
        )
    else:
        questions = "- Les questions que vous écrivez ne sont pas enregistrées.\n"
    return (
        "**Vos données**\n\n"
        "- Votre progression et vos réponses aux parcours, pour reprendre où vous en étiez.\n"
        + questions
        + "- Les questions que vous choisissez de transmettre à l’équipe, jusqu’à votre demande d’effacement.\n"
        "- Si vous rejoignez un collectif : votre adhésion ; la vue de groupe n’en montre que des totaux.\n"
        "- /oublier efface tout cela immédiatement et définitivement."
    )

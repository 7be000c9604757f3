"""« Regards croisés »: the dialogue of /collectif, /rejoindre and invitation links.

The engine hands over three kinds of events (see ``Engine._command``,
``_choose`` and ``_say``): commands, button presses whose payload starts with
``k:``, and free text while a name is awaited. Everything said to the user
about collectives is written here; the aggregation is in
:mod:`dialogue.features.collective.aggregation`, the storage in :mod:`dialogue.features.collective.store`.

Payloads are ``k:<action>:<collective id>``: at most 2 + 6 + 1 + 8 bytes.
A button press is never trusted on its own: every action checks the person's
role in the collective again (Telegram clients can forge callback data).
"""

from __future__ import annotations

from dialogue import pages
from dialogue.buttons import MENU_BUTTON, label
from dialogue.compiled import ORIENTATION
from dialogue.features.collective.aggregation import (
    MIN_ANSWERS,
    GroupProfile,
)
from dialogue.features.collective.store import (
    INVITED,
    Collective,
    CollectiveStore,
    Membership,
    code_in,
    looks_like_code,
)
from dialogue.features.collective.views import GroupViews, coordinator_buttons, counting_sentence, member_buttons
from dialogue.features.collective.wording import COUNTS_ONLY
from dialogue.pages import page_number
from dialogue.types import Button, ChannelSettings, Reply, literal
from knowledge.debate import DebateRules
from knowledge.loader import KnowledgeBase
from knowledge.text import normalise

NAME_MAX = 60
CONTEXT_KEY = "collectif"
CANCEL_BUTTON = Button("Annuler", "k:cancel")
PDF_LABEL = "Recevoir la vue de groupe (PDF)"
GONE = "Ce collectif n’existe plus : la personne qui le coordonnait l’a supprimé. Il n’y a plus de vue de groupe à envoyer."



class CollectiveFlow:
    """Creation, invitations, membership and the group view of collectives."""

    def __init__(self, kb: KnowledgeBase, store: CollectiveStore, debate: DebateRules, settings: ChannelSettings | None = None) -> None:
        self.kb = kb
        self.store = store
        self.debate = debate
        self.settings = settings or ChannelSettings()
        self._phrases = tuple(normalise(p) for p in debate.trigger_phrases)
        self.views = GroupViews(kb, store, debate)
        self._question_ids = self.views.question_ids

    # ------------------------------------------------------------------ hooks called by the engine

    def command(self, record, name: str, argument: str) -> list[Reply] | None:
        """/collectif, /rejoindre CODE and /start CODE; None for any other command."""
        self._forget_pending(record)
        if name == "collectif":
            return self.home(record.id)
        if name == "rejoindre":
            if not argument.strip():
                self._await(record, "code")
                return [Reply("Quel est votre code d’invitation ? Écrivez-le ci-dessous (par exemple « abcde-fghjk-mnpqr-stuvw »).", ((CANCEL_BUTTON,),))]
            return self.open_invitation(record.id, code_in(argument) or argument)
        if name == "start" and argument and looks_like_code(argument):
            return self.open_invitation(record.id, argument)
        return None

    def interrupt(self, record) -> None:
        """Any other button: a name or code that was awaited is no longer expected."""
        self._forget_pending(record)

    def say(self, record, text: str) -> list[Reply] | None:
        """Free text: an awaited name or code, or a phrase asking for /collectif."""
        pending = record.context.features.get(CONTEXT_KEY)
        if isinstance(pending, dict) and pending.get("await"):
            return self._awaited(record, pending, text.strip())
        plain = normalise(text)
        code = code_in(text)
        # A code pasted in a sentence: opened if it exists, or if the sentence speaks of a code.
        if code and (self.store.find_code(code) is not None or any(w in plain for w in ("code", "invit", "rejoindre"))):
            return self.open_invitation(record.id, code)
        if any(phrase in plain for phrase in self._phrases):
            return self.home(record.id)
        return None

    def choose(self, record, rest: str) -> list[Reply] | None:
        """A ``k:`` button; None when the payload is not (or no longer) valid."""
        self._forget_pending(record)
        action, _, tail = rest.partition(":")
        collective_id, _, extra = tail.partition(":")
        number = page_number(extra) if action == "o" else (1 if not extra else None)
        if number is None:  # « Suite » of the group view only: anything else is forged or stale
            return None
        user_id = record.id
        if action == "cancel" and not collective_id:
            return [Reply("C’est annulé.", ((MENU_BUTTON,),))]
        if action == "new" and not collective_id:
            self._await(record, "name")
            return [Reply("Comment s’appelle votre collectif ? (par exemple « PTCE Vallée de l’Oise »)", ((CANCEL_BUTTON,),))]
        if action == "code" and not collective_id:
            self._await(record, "code")
            return [Reply("Écrivez votre code d’invitation ci-dessous.", ((CANCEL_BUTTON,),))]
        collective = self.store.get(collective_id) if collective_id else None
        if collective is None:
            if action == "pdf" and collective_id:
                return [Reply(GONE, ((MENU_BUTTON,),))]
            return None
        membership = self.store.membership(collective.id, user_id)
        if action == "pdf":
            return self.group_report(membership)
        if action in {"j", "js", "no"}:
            return self._answer_invitation(record, collective, membership, action)
        if membership is None or not membership.active:
            return None
        if action == "o":
            return self.page(membership, number)  # checks whether this member may see the group view
        if action == "count":
            return self._count_here(membership)
        if action == "leave":
            return [
                Reply(
                    f"Quitter « {literal(collective.name)} » ? Vos réponses ne compteront plus pour ce collectif ; elles restent à vous.",
                    ((Button("Oui, quitter", f"k:leave!:{collective.id}"), Button("Non", f"k:o:{collective.id}")),),
                )
            ]
        if action == "leave!":
            if membership.is_coordinator:
                return None
            self.store.leave(collective.id, user_id)
            return [Reply(f"Vous avez quitté « {literal(collective.name)} ». Vos réponses n’y comptent plus.", ((MENU_BUTTON,),))]
        if membership.is_coordinator:
            return self._coordinator_action(membership, action)
        return None

    def in_group(self, user_id: str, group_chat: str, argument: str, *, command: str = "collectif") -> list[Reply]:
        """/collectif typed in a group chat (Telegram): link the group, post the invitation.

        /rejoindre in a group is sent to the private chat: joining and answering never happen in public.
        """
        if command != "collectif":
            where = f" : https://t.me/{self.settings.bot_username}" if self.settings.bot_username else ""
            return [
                Reply(
                    "Pour rejoindre un collectif, ouvrez le lien d’invitation ou écrivez-moi en message privé"
                    f"{where} ; les questions se répondent toujours en privé."
                )
            ]
        owned = [c for c in self.store.coordinated_by(user_id) if not c.closed]
        linked = self.store.for_group(group_chat)
        if owned and (linked is None or linked.coordinator_id == user_id):
            choice = argument.strip()
            if len(owned) > 1 and not (choice.isdigit() and 1 <= int(choice) <= len(owned)):
                lines = "\n".join(f"{i}. « {literal(c.name)} »" for i, c in enumerate(owned, start=1))
                return [Reply(f"Vous coordonnez plusieurs collectifs. Lequel lier à ce groupe ? Écrivez /collectif suivi du numéro :\n{lines}")]
            collective = owned[int(choice) - 1] if len(owned) > 1 else owned[0]
            self.store.link_group(collective.id, group_chat)
            return [Reply(f"Ce groupe est maintenant lié au collectif « {literal(collective.name)} ».\n\n" + self._group_invitation(collective))]
        if linked is not None:
            return [Reply(self._group_invitation(linked))]
        return [
            Reply(
                "Ce groupe n’est lié à aucun collectif. La personne qui coordonne crée d’abord le collectif "
                "en message privé avec moi (/collectif), puis tape /collectif ici pour y publier l’invitation."
            )
        ]

    # ------------------------------------------------------------------ pages

    def home(self, user_id: str) -> list[Reply]:
        """/collectif: the one collective's page, a choice between several, or how to start."""
        memberships = self.store.memberships(user_id)
        if len(memberships) == 1:
            return self.page(memberships[0])
        if memberships:
            rows = [(Button(label(f"« {m.collective.name} »"), f"k:o:{m.collective.id}"),) for m in memberships]
            rows.append((Button("Créer un collectif", "k:new"),))
            rows.append((MENU_BUTTON,))
            return [Reply("**Vos collectifs** — lequel voulez-vous voir ?", tuple(rows))]
        return [
            Reply(
                "**Regards croisés** — faites le parcours d’orientation à plusieurs. Chaque membre de votre "
                "collectif répond de son côté ; je montre ensuite où vos avis se rejoignent et où ils divergent, "
                "avec des points à mettre en débat lors de votre prochaine réunion.\n\n"
                f"{COUNTS_ONLY}",
                ((Button("Créer un collectif", "k:new"),), (Button("J’ai un code d’invitation", "k:code"),), (MENU_BUTTON,)),
            )
        ]

    def page(self, membership: Membership, number: int = 1) -> list[Reply]:
        """A collective as seen by one of its members: the group view (at page ``number``) when they may see it."""
        collective = membership.collective
        if membership.is_coordinator or collective.members_see_view:
            return self.view(membership, number)
        counted = self.store.counting_for(membership.user_id)
        lines = [f"**« {literal(collective.name)} »** — coordonné par {literal(collective.coordinator_name)}."]
        lines.append(counting_sentence(collective, counted))
        lines.append("La vue de groupe n’est pas ouverte aux membres pour l’instant : la personne qui coordonne peut le faire.")
        if collective.closed:
            lines.append("Ce collectif est clos : il ne reçoit plus de nouvelles réponses.")
        return [Reply("\n\n".join(lines), member_buttons(membership, counted))]

    def view(self, membership: Membership, number: int = 1) -> list[Reply]:
        """One page of the group view, with « Suite » to the next; the last page carries the buttons."""
        collective = membership.collective
        texts = self.views.texts(collective, membership.user_id)
        counted = self.store.counting_for(membership.user_id)
        if membership.is_coordinator:
            buttons = coordinator_buttons(collective)
            if not collective.closed and (counted is None or counted.id != collective.id):
                buttons = ((Button("Faire compter mon orientation ici", f"k:count:{collective.id}"),), *buttons)
        else:
            buttons = member_buttons(membership, counted)
        pdf = (Button(PDF_LABEL, f"k:pdf:{collective.id}"),)
        return [pages.page(texts, number, lambda n: f"k:o:{collective.id}:{n}", (pdf, *buttons))]

    def group_report(self, membership: Membership | None) -> list[Reply]:
        """« Recevoir la vue de groupe (PDF) »: who may see the view is checked again, now."""
        if membership is None or not membership.active:
            return [Reply("Vous ne faites pas partie de ce collectif : sa vue de groupe ne vous est pas ouverte.", ((MENU_BUTTON,),))]
        collective = membership.collective
        if not (membership.is_coordinator or collective.members_see_view):
            return [
                Reply(
                    f"La vue de groupe de « {literal(collective.name)} » est réservée à la personne qui coordonne : "
                    "elle peut l’ouvrir aux membres.",
                    ((Button("Voir le collectif", f"k:o:{collective.id}"),), (MENU_BUTTON,)),
                )
            ]
        request = self.views.request(collective, membership.user_id)
        return [
            Reply(
                f"Je prépare la vue de groupe de « {literal(collective.name)} » en PDF, avec son image ; "
                "elle ne contient que des décomptes, jamais les réponses d’un membre.",
                ((Button("Voir le collectif", f"k:o:{collective.id}"),), (MENU_BUTTON,)),
                attachment=request,
            )
        ]

    def profile(self, collective: Collective, viewer: str | None = None) -> GroupProfile:
        """The aggregated group profile ``viewer`` may see (what a report would show)."""
        return self.views.profile(collective, viewer)

    # ------------------------------------------------------------------ invitations

    def invitation_text(self, code: str) -> str:
        link = self.settings.invitation_link(code)
        if link:
            return f"Transférez ce lien aux membres de votre collectif :\n{link}"
        return f"Donnez ce code aux membres de votre collectif : **{code}**\nIls l’utilisent en écrivant : /rejoindre {code}"

    def _group_invitation(self, collective: Collective) -> str:
        code = self.store.active_code(collective.id)
        headcount = self.store.headcount(collective.id)
        if code is None or collective.closed:
            invitation = "Les invitations sont fermées pour l’instant."
        elif link := self.settings.invitation_link(code):
            invitation = f"Pour participer, ouvrez ce lien : {link}"
        else:
            invitation = f"Pour participer : /rejoindre {code}"
        return (
            f"**Regards croisés — « {literal(collective.name)} »**\n{invitation}\n\n"
            "Les questions se répondent en message privé avec moi, jamais dans ce groupe ; "
            "la vue de groupe ne montre que des totaux, jamais la réponse d’un membre.\n"
            f"Membres : {headcount.joined}."
        )

    def open_invitation(self, user_id: str, raw_code: str) -> list[Reply]:
        found = self.store.find_code(raw_code)
        if found is None:
            return [
                Reply(
                    "Ce code d’invitation n’existe pas. Vérifiez-le auprès de la personne qui vous a invité(e) "
                    "(il a la forme « abcde-fghjk-mnpqr-stuvw »).",
                    ((MENU_BUTTON,),),
                )
            ]
        collective, valid = found
        membership = self.store.membership(collective.id, user_id)
        if membership is not None and membership.active:
            rows = ((Button("Voir le collectif", f"k:o:{collective.id}"),), (MENU_BUTTON,))
            return [Reply(f"Vous faites déjà partie de « {literal(collective.name)} ».", rows)]
        if not valid or collective.closed:
            return [
                Reply(
                    f"Cette invitation à « {literal(collective.name)} » n’est plus valable : la personne qui coordonne "
                    "l’a désactivée ou a clos le collectif. Demandez-lui un nouveau lien.",
                    ((MENU_BUTTON,),),
                )
            ]
        self.store.record_invited(collective.id, user_id)
        return [
            Reply(
                f"**Invitation** — {literal(collective.coordinator_name)} vous invite à rejoindre « {literal(collective.name)} » "
                "pour faire le parcours d’orientation à plusieurs.\n\n"
                "**Ce qui sera partagé** : vos réponses au parcours, comptées avec celles des autres membres. "
                f"{COUNTS_ONLY}\n"
                "**Ce qui ne le sera pas** : votre nom, sauf si vous choisissez de signer ; vos réponses une par une.\n\n"
                "Vous pourrez quitter le collectif à tout moment ; /oublier efface tout.",
                (
                    (Button("Rejoindre", f"k:j:{collective.id}"),),
                    (Button("Rejoindre en signant", f"k:js:{collective.id}"),),
                    (Button("Refuser", f"k:no:{collective.id}"),),
                ),
            )
        ]

    def _answer_invitation(self, record, collective: Collective, membership: Membership | None, action: str) -> list[Reply] | None:
        if membership is None or membership.status != INVITED or collective.closed:
            return None
        if action == "no":
            self.store.decline(collective.id, record.id)
            return [Reply(f"C’est noté : vous n’avez pas rejoint « {literal(collective.name)} ». Rien n’a été partagé.", ((MENU_BUTTON,),))]
        if action == "js":
            self._await(record, "signature", collective.id)
            return [Reply("Quel nom afficher dans la liste des participants ? (il n’apparaît jamais à côté de vos réponses)", ((CANCEL_BUTTON,),))]
        return self._join(record, collective, None)

    def _join(self, record, collective: Collective, signed_name: str | None) -> list[Reply]:
        previous = self.store.counting_for(record.id)
        counts = self.store.join(collective.id, record.id, signed_name)
        answered = any(q in record.answers for q in self._question_ids)
        text = f"Bienvenue dans « {literal(collective.name)} » !"
        if signed_name:
            text += f" Votre nom apparaîtra ainsi : {literal(signed_name)}."
        rows: list[tuple[Button, ...]] = []
        if counts:
            if answered:
                text += (
                    "\n\nVos réponses au parcours d’orientation comptent dès maintenant pour ce collectif. "
                    "Vous pouvez les compléter ou les revoir avec /orientation."
                )
                rows.append((Button("Continuer l’orientation", f"f:{ORIENTATION}"),))
            else:
                text += "\n\nFaites maintenant le parcours d’orientation : vos réponses compteront pour ce collectif."
                rows.append((Button("Commencer l’orientation", f"f:{ORIENTATION}"),))
        elif previous is not None:
            text += (
                f"\n\nVotre orientation compte aujourd’hui pour « {literal(previous.name)} ». Une même orientation ne compte "
                "que pour un collectif à la fois : pour lequel doit-elle compter ?"
            )
            rows.append((Button(label(f"« {collective.name} »"), f"k:count:{collective.id}"),))
            rows.append((Button(label(f"Garder « {previous.name} »"), f"k:o:{previous.id}"),))
        rows.append((MENU_BUTTON,))
        return [Reply(text, tuple(rows))]

    def _count_here(self, membership: Membership) -> list[Reply] | None:
        collective = membership.collective
        if collective.closed:
            return None
        previous = self.store.counting_for(membership.user_id)
        self.store.set_counting(membership.user_id, collective.id)
        text = f"Votre orientation compte désormais pour « {literal(collective.name)} »"
        if previous is not None and previous.id != collective.id:
            text += f", et plus pour « {literal(previous.name)} »"
        text += ". Si vos réponses actuelles concernaient l’autre collectif, reprenez le parcours avec /recommencer."
        return [Reply(text, ((Button("Voir le collectif", f"k:o:{collective.id}"),), (MENU_BUTTON,)))]

    # ------------------------------------------------------------------ coordinator

    def _coordinator_action(self, membership: Membership, action: str) -> list[Reply] | None:
        collective = membership.collective
        cid = collective.id
        back = ((Button("Voir le collectif", f"k:o:{cid}"),), (MENU_BUTTON,))
        if action == "del":
            return [
                Reply(
                    f"Supprimer « {literal(collective.name)} » ? La vue de groupe, les adhésions et les codes seront effacés. "
                    "Les réponses personnelles de chaque membre restent à eux.",
                    ((Button("Oui, supprimer", f"k:del!:{cid}"), Button("Non", f"k:o:{cid}")),),
                )
            ]
        if action == "del!":
            self.store.delete(cid)
            return [Reply(f"Le collectif « {literal(collective.name)} » est supprimé.", ((MENU_BUTTON,),))]
        if collective.closed:
            return None
        if action == "inv":
            code = self.store.active_code(cid)
            if code is None:
                return [Reply("Aucun code n’est actif : créez-en un nouveau.", ((Button("Nouveau code", f"k:renew:{cid}"),), (MENU_BUTTON,)))]
            return [Reply(self.invitation_text(code), back)]
        if action == "renew":
            code = self.store.renew_code(cid)
            return [Reply("Nouveau code créé ; l’ancien ne fonctionne plus. Les membres déjà inscrits le restent.\n\n" + self.invitation_text(code), back)]
        if action == "revoke":
            self.store.revoke_code(cid)
            return [Reply("Le code est désactivé : plus personne ne peut rejoindre le collectif avec lui. Les membres déjà inscrits le restent.", back)]
        if action in {"see", "hide"}:
            self.store.set_members_see_view(cid, action == "see")
            text = (
                "Les membres peuvent maintenant voir la vue de groupe avec /collectif (jamais les réponses des autres)."
                if action == "see"
                else "La vue de groupe est de nouveau réservée à vous."
            )
            return [Reply(text, back)]
        if action == "close":
            return [
                Reply(
                    f"Clore « {literal(collective.name)} » ? Plus personne ne pourra le rejoindre et la vue de groupe sera figée "
                    "avec les réponses données jusqu’ici.",
                    ((Button("Oui, clore", f"k:close!:{cid}"), Button("Non", f"k:o:{cid}")),),
                )
            ]
        if action == "close!":
            self.store.close(cid)
            return [Reply(f"« {literal(collective.name)} » est clos : la vue de groupe ne bougera plus.", back)]
        return None

    # ------------------------------------------------------------------ awaited text

    def _await(self, record, what: str, collective_id: str | None = None, **extra) -> None:
        record.context.features[CONTEXT_KEY] = {"await": what, "collective": collective_id, **extra}

    def _forget_pending(self, record) -> None:
        record.context.features.pop(CONTEXT_KEY, None)

    def _awaited(self, record, pending: dict, text: str) -> list[Reply] | None:
        what = pending.get("await")
        if what == "code":
            self._forget_pending(record)
            return self.open_invitation(record.id, code_in(text) or text)
        name = " ".join(text.split())
        if name.endswith("?"):  # a question, not a name: answer it as usual and stop waiting
            self._forget_pending(record)
            return None
        if not name or len(name) > NAME_MAX or name.startswith("/"):
            return [Reply(f"Écrivez un nom de {NAME_MAX} caractères au plus, ou appuyez sur « Annuler ».", ((CANCEL_BUTTON,),))]
        if what == "name":
            self._await(record, "coordinator", collective_name=name)
            return [
                Reply(
                    "Comment vous présenter aux personnes invitées ? (par exemple « Marie, coordinatrice » ; "
                    "c’est ce qu’elles liront dans l’invitation)",
                    ((CANCEL_BUTTON,),),
                )
            ]
        if what == "coordinator":
            collective_name = str(pending.get("collective_name") or "")
            self._forget_pending(record)
            if not collective_name:
                return [Reply("Le nom du collectif a été perdu : recommencez avec /collectif.", ((MENU_BUTTON,),))]
            collective, code = self.store.create(record.id, collective_name, name)
            answered = any(q in record.answers for q in self._question_ids)
            return [
                Reply(
                    f"Le collectif « {literal(collective.name)} » est créé.\n\n{self.invitation_text(code)}\n\n"
                    "Chaque membre répond au parcours d’orientation de son côté. Tapez /collectif pour voir la vue "
                    f"de groupe : la répartition d’une question s’affiche à partir de {MIN_ANSWERS} réponses d’autres "
                    "membres que vous, et change par paquets de réponses nouvelles.",
                    (
                        (Button("Continuer mon orientation" if answered else "Commencer mon orientation", f"f:{ORIENTATION}"),),
                        (Button("Voir le collectif", f"k:o:{collective.id}"),),
                        (MENU_BUTTON,),
                    ),
                )
            ]
        if what == "signature":
            self._forget_pending(record)
            invited_to = self.store.get(str(pending.get("collective") or ""))
            membership = self.store.membership(invited_to.id, record.id) if invited_to else None
            if invited_to is None or membership is None or membership.status != INVITED or invited_to.closed:
                return [Reply("Cette invitation n’est plus valable.", ((MENU_BUTTON,),))]
            return self._join(record, invited_to, name)
        self._forget_pending(record)
        return [Reply("C’est annulé.", ((MENU_BUTTON,),))]


# --------------------------------------------------------------------------- rendering (pure)

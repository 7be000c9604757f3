"""``ptce-bot insights --html``: one self-contained French page with inline SVG charts.

matplotlib is imported here only, when a page is asked for: the bot and the
terminal chat never load it.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

from bot.insights import TIER_LABELS, Insights
from dialogue.storage.files import write_private
from knowledge.loader import KnowledgeBase

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:2px solid #3b6ea5;padding-bottom:.2em;font-size:1.25em}
.kpis{display:flex;gap:1em;flex-wrap:wrap}.kpi{background:#f1f5fa;border-radius:8px;padding:.8em 1.2em;min-width:140px}
.kpi b{display:block;font-size:1.7em;color:#3b6ea5}table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.95em}
td,th{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}th{background:#f6f6f6}
td.n{text-align:right;font-variant-numeric:tabular-nums}.chart svg{max-width:100%;height:auto}.note{color:#555;font-size:.92em}
small{color:#666}
"""


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _charts(data: Insights, kb: KnowledgeBase) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "svg.fonttype": "none", "axes.spines.top": False, "axes.spines.right": False})
    charts: dict[str, str] = {}
    if data.weeks:
        fig, ax = plt.subplots(figsize=(8, 2.8))
        labels = [w.week for w in data.weeks]
        ax.bar(labels, [w.questions for w in data.weeks], color="#3b6ea5", label="Questions")
        ax.plot(labels, [w.users for w in data.weeks], color="#e07b39", marker="o", label="Personnes")
        ax.set_title("Questions et personnes par semaine")
        ax.legend(frameon=False)
        charts["weeks"] = _svg(fig)
    if data.tiers:
        fig, ax = plt.subplots(figsize=(8, 2.4))
        names = [TIER_LABELS.get(t, t) for t in data.tiers]
        ax.barh(names[::-1], list(data.tiers.values())[::-1], color="#5a9e6f")
        ax.set_title("Comment le conseiller a répondu")
        charts["tiers"] = _svg(fig)
    if data.feedback:
        top = list(data.feedback.items())[:12]
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(top) + 1))
        names = [_title(kb, t) for t, _ in top][::-1]
        ax.barh(names, [v["up"] for _, v in top][::-1], color="#5a9e6f", label="Utile")
        ax.barh(names, [-v["down"] for _, v in top][::-1], color="#c0504d", label="Pas utile")
        ax.axvline(0, color="#333", linewidth=0.8)
        ax.set_title("Avis des utilisateurs par sujet")
        ax.legend(frameon=False, loc="lower right")
        charts["feedback"] = _svg(fig)
    for funnel in data.funnels:
        if not funnel.started:
            continue
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(funnel.steps) + 1.2))
        names = ["Commencé"] + [s.title[:38] for s in funnel.steps] + ["Terminé"]
        values = [funnel.started] + [s.reached for s in funnel.steps] + [funnel.finished]
        ax.barh(names[::-1], values[::-1], color="#3b6ea5")
        ax.set_title(f"Parcours « {funnel.title} » : combien de personnes à chaque étape")
        charts[f"funnel-{funnel.flow}"] = _svg(fig)
    return charts


def _title(kb: KnowledgeBase, topic_id: str | None) -> str:
    if not topic_id:
        return "aucun sujet"
    topic = kb.topics.get(topic_id)
    return topic.title if topic else topic_id


def render_html(data: Insights, kb: KnowledgeBase) -> str:
    charts = _charts(data, kb)
    e = html.escape
    period = f"du {data.since[:10] or 'début'} au {data.until[:10] or 'dernier jour'}"
    parts = [
        "<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Conseiller PTCE — tableau de bord de l’équipe</title><style>{_STYLE}</style></head><body>",
        "<h1>Conseiller PTCE — tableau de bord de l’équipe</h1>",
        f"<p class='note'>Période : {e(period)}. Les personnes ne sont jamais nommées : chacune est représentée par un code.</p>",
        "<div class='kpis'>",
        f"<div class='kpi'><b>{data.questions}</b>questions posées</div>",
        f"<div class='kpi'><b>{data.users}</b>personnes</div>",
        f"<div class='kpi'><b>{sum(w.conversations for w in data.weeks)}</b>conversations</div>",
        f"<div class='kpi'><b>{data.open_handovers}</b>questions transmises en attente</div>",
        "</div>",
        "<h2>Fréquentation</h2>",
        f"<div class='chart' id='chart-weeks'>{charts.get('weeks', '<p>Aucune question sur la période.</p>')}</div>",
        "<h2>Qualité des réponses</h2>",
        "<p class='note'>« Réponse sûre » : le conseiller a reconnu le sujet. « Suggestions » : il a proposé plusieurs sujets. "
        "« Pas de réponse » : la question sort du document ou n’a pas été comprise.</p>",
        f"<div class='chart' id='chart-tiers'>{charts.get('tiers', '')}</div>",
        f"<div class='chart' id='chart-feedback'>{charts.get('feedback', '<p>Aucun avis sur la période.</p>')}</div>",
        "<h2>Questions à revoir</h2>",
        "<p class='note'>Questions sans réponse, incertaines ou jugées pas utiles, regroupées quand elles se ressemblent, "
        "les plus fréquentes d’abord. Pour rattacher une question à un sujet : "
        "<code>ptce-bot insights assign \"question\" SUJET</code>.</p>",
        "<table><tr><th>Nombre</th><th>Question (et variantes)</th><th>Sujet choisi</th><th>Sujet suivant</th><th>Jugées pas utiles</th></tr>",
    ]
    for group in data.inbox:
        variants = "".join(f"<br><small>{e(v)}</small>" for v in group.variants)
        comments = "".join(f"<br><small>Commentaire : « {e(c)} »</small>" for c in group.comments)
        parts.append(
            f"<tr><td class='n'>{group.count}</td><td>{e(group.example)}{variants}{comments}</td>"
            f"<td>{e(_title(kb, group.topic))}</td><td>{e(_title(kb, group.runner_up))}</td><td class='n'>{group.thumbs_down}</td></tr>"
        )
    parts.append("</table>")
    for funnel in data.funnels:
        parts.append(f"<h2>Parcours « {e(funnel.title)} »</h2>")
        parts.append(f"<p>{funnel.started} personne(s) ont commencé, {funnel.finished} ont terminé.</p>")
        parts.append(f"<div class='chart' id='chart-funnel-{e(funnel.flow)}'>{charts.get('funnel-' + funnel.flow, '')}</div>")
        parts.append("<table><tr><th>Étape</th><th>Atteinte</th><th>Arrêt à cette étape</th></tr>")
        parts += [
            f"<tr><td>{e(s.title)}</td><td class='n'>{s.reached}</td><td class='n'>{s.stopped_here}</td></tr>" for s in funnel.steps
        ]
        parts.append("</table>")
        if funnel.most_skipped:
            parts.append("<p>Questions les plus souvent passées :</p><ul>")
            parts += [f"<li>{e(text)} — {n} fois</li>" for _, text, n in funnel.most_skipped]
            parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(data: Insights, kb: KnowledgeBase, path: Path) -> Path:
    write_private(path, render_html(data, kb))  # users' questions: owner-only
    return path

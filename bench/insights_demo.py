"""``make insights-demo``: a realistic simulated month through the real engine, then the insights page.

300 simulated users ask the questions of the evaluation sets (the dialogue
corpus when present), give 👍 / 👎, walk part of the orientation or the
legal guide, sometimes hand a question over; a few answers are given from the
command line. Everything goes through ``Engine.handle`` on a temporary
database, with a simulated clock spread over 30 days.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dialogue.engine import Engine
from dialogue.features.registry import standard_features
from dialogue.features.team.flow import TeamServices
from dialogue.features.team.handovers import HandoverStore
from dialogue.features.team.question_log import QuestionLog
from dialogue.storage.progress import ProgressStore
from dialogue.types import Choose, Command, Say
from knowledge.loader import load_knowledge

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)


def corpus_questions() -> list[str]:
    questions: list[str] = []
    dialogues = ROOT / "tests" / "data" / "dialogues"
    if dialogues.is_dir():
        import yaml

        for path in sorted(dialogues.glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            turns = data.get("turns", []) if isinstance(data, dict) else data
            for turn in turns or []:
                if isinstance(turn, dict) and isinstance(turn.get("say"), str):
                    questions.append(turn["say"])
    for path in (ROOT / "tests" / "data" / "questions.tsv", ROOT / "bench" / "data" / "heldout.tsv"):
        with path.open(encoding="utf-8", newline="") as handle:
            questions += [row["question"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return questions


def simulate(db_path: Path, *, users: int = 300, days: int = 30, seed: int = 12) -> ProgressStore:
    rng = random.Random(seed)
    kb = load_knowledge()
    store = ProgressStore.open(db_path)
    now = [START]
    clock = lambda: now[0]  # noqa: E731
    log = QuestionLog(store.db, clock=clock, retention_days=3650)
    handovers = HandoverStore(store.db, clock=clock)
    engine = Engine(kb, store, clock=clock, features=standard_features(team=TeamServices(log, handovers)))
    questions = corpus_questions()
    # A few questions come back often, as in real traffic.
    popular = rng.sample(questions, 25)
    for number in range(users):
        user = f"tg:{700000 + number}"
        now[0] = START + timedelta(days=rng.random() * days * (0.6 + 0.4 * rng.random()), hours=rng.random() * 10)
        replies = engine.handle(user, Command("start"))
        for _ in range(rng.choice([1, 1, 2, 3, 4, 6])):
            now[0] += timedelta(minutes=rng.randint(1, 5))
            replies = engine.handle(user, Say(rng.choice(popular if rng.random() < 0.35 else questions)))
            payloads = [b.payload for r in replies for b in r.all_buttons()]
            thumbs = [p for p in payloads if p.startswith(("tm:+", "tm:-"))]
            if thumbs and rng.random() < 0.45:
                up = rng.random() < 0.72
                replies = engine.handle(user, Choose(thumbs[0] if up else thumbs[1]))
                if not up and rng.random() < 0.4:
                    engine.handle(user, Say(rng.choice(["des exemples concrets", "trop général", "je cherchais les aides de la région", "pas clair"])))
            if any(b.payload == "tm:h" for r in replies for b in r.all_buttons()) and rng.random() < 0.5:
                engine.handle(user, Choose("tm:h"))
                engine.handle(user, Choose("tm:h1"))
        if rng.random() < 0.45:
            flow = "orientation" if rng.random() < 0.75 else "formes"
            replies = engine.handle(user, Choose(f"f:{flow}"))
            patience = rng.choice([2, 4, 6, 9, 14, 40])
            for _ in range(patience):
                now[0] += timedelta(seconds=rng.randint(10, 90))
                buttons = [b for r in replies for b in r.all_buttons()]
                options = [b.payload for b in buttons if b.payload.startswith(("a:", "x:"))]
                skip = next((b.payload for b in buttons if b.payload.startswith("s:")), None)
                if not options:
                    break
                if skip and rng.random() < 0.15:
                    replies = engine.handle(user, Choose(skip))
                    continue
                choice = rng.choice(options)
                replies = engine.handle(user, Choose(choice))
                validate = next((b.payload for r in replies for b in r.all_buttons() if b.payload.startswith("ok:")), None)
                if choice.startswith("x:") and validate:
                    replies = engine.handle(user, Choose(validate))
        # The store stamps answers with the real time: move them to the simulated day.
        store.db.execute("UPDATE answers SET answered_at = ? WHERE user_id = ?", [now[0].isoformat(timespec="seconds"), user])
        store.db.conn.commit()
    for item in handovers.open_items()[::2]:
        handovers.answer(item.ref, "Merci pour votre question : voici ce que nous vous conseillons…")
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--html", type=Path, default=ROOT / "build" / "insights-demo.html")
    parser.add_argument("--db", type=Path, default=None, help="garder la base simulée dans ce fichier")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--screenshot", type=Path, default=None, help="capture PNG de la page (Chromium sans écran)")
    args = parser.parse_args(argv)
    from bot import insights
    from bot.insights_html import write_html

    with tempfile.TemporaryDirectory() as tmp:
        db_path = args.db or Path(tmp) / "demo.db"
        store = simulate(db_path, users=args.users)
        kb = load_knowledge()
        data = insights.compute(store.db, kb)
        args.html.parent.mkdir(parents=True, exist_ok=True)
        write_html(data, kb, args.html)
        store.close()
    print(f"Mois simulé : {data.questions} questions, {data.users} personnes. Page : {args.html}")
    if args.screenshot:
        screenshot(args.html, args.screenshot)
        print(f"Capture : {args.screenshot}")
    return 0


def screenshot(page: Path, output: Path, width: int = 1000) -> None:
    """The whole page as a PNG, through the system's headless Chromium."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)
    try:
        driver.get(page.resolve().as_uri())
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(height + 20, 6000))
        driver.save_screenshot(str(output))
    finally:
        driver.quit()


if __name__ == "__main__":
    raise SystemExit(main())

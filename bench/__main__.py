"""``python -m bench [--quick] [--json PATH] [--only SECTIONS] [--profile]``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.report import Report, loadavg

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


@dataclass(frozen=True)
class Sizes:
    latency_users: int = 1000
    latency_events: int = 30
    telegram_users: int = 200
    telegram_events: int = 30
    latency_tg_users: int = 50
    latency_tg_events: int = 40
    storage_upserts: int = 3000
    cold_runs: int = 5
    rss_events: int = 1000
    scale_users: int = 100_000
    scale_small_users: int = 1_000
    scale_probe_existing: int = 500
    scale_probe_new: int = 100
    report_runs: int = 5
    web_sessions: int = 200
    web_events: int = 30


FULL = Sizes()
QUICK = Sizes(
    latency_users=100,
    telegram_users=50,
    latency_tg_users=10,
    latency_tg_events=10,
    storage_upserts=500,
    cold_runs=3,
    rss_events=300,
    scale_users=10_000,
    scale_small_users=500,
    scale_probe_existing=150,
    scale_probe_new=20,
    report_runs=2,
    web_sessions=50,
    web_events=10,
)


def run(sizes: Sizes, only: set[str], *, quick: bool, progress=print) -> Report:
    from bench import measures, team_measures

    report = Report(quick=quick)
    report.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report.load_before = loadavg()
    started = time.perf_counter()
    kb = measures.knowledge()
    steps = {
        "engine": lambda: measures.engine_latency(sizes.latency_users, sizes.latency_events, kb=kb),
        "telegram": lambda: measures.telegram_throughput(
            sizes.telegram_users, sizes.telegram_events, upserts=sizes.storage_upserts, kb=kb
        ),
        "telegram_latency": lambda: measures.telegram_latency(sizes.latency_tg_users, sizes.latency_tg_events, kb=kb),
        "startup": lambda: measures.cold_start(sizes.cold_runs, sizes.rss_events, kb=kb),
        "matcher": lambda: measures.matcher_quality(kb=kb),
        "scale": lambda: measures.many_users(
            sizes.scale_users,
            small_users=sizes.scale_small_users,
            probe_existing=sizes.scale_probe_existing,
            probe_new=sizes.scale_probe_new,
            kb=kb,
        ),
        "report": lambda: measures.pdf_report(sizes.report_runs),
        # Issue 12: the question log's cost and ``insights`` at scale.
        "team": lambda: team_measures.team(kb, log_rows=100_000 if quick else 1_000_000, workdir=measures.workdir),
        "dialogues": lambda: measures.dialogue_corpus(kb=kb),
    }
    from bench import advice, collective, web

    steps[collective.NAME] = lambda: collective.group_view(kb=kb, workdir=measures.workdir)
    steps[advice.NAME] = lambda: advice.advice(
        kb=kb, answer_sets=3_000 if quick else 100_000, workdir=measures.workdir, one_by_one=not quick
    )
    steps[web.NAME] = lambda: web.web_load(sizes.web_sessions, sizes.web_events, kb=kb, workdir=measures.workdir)
    for name in (*measures.SECTIONS, collective.NAME, advice.NAME, web.NAME):
        if name not in only:
            continue
        step_started = time.perf_counter()
        progress(f"… {name}", file=sys.stderr, flush=True)
        section = steps[name]()
        section.details["section_seconds"] = round(time.perf_counter() - step_started, 2)
        report.sections.append(section)
    report.duration_s = time.perf_counter() - started
    report.load_after = loadavg()
    return report


def profile_engine(sizes: Sizes, top: int = 25) -> None:
    """cProfile of the engine workload (section 1), printed by cumulative and own time."""
    import cProfile
    import pstats

    from bench import measures

    kb = measures.knowledge()
    profiler = cProfile.Profile()
    profiler.enable()
    measures.engine_latency(min(sizes.latency_users, 300), sizes.latency_events, kb=kb)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    from bench.advice import NAME as ADVICE
    from bench.collective import NAME as COLLECTIVE
    from bench.measures import SECTIONS
    from bench.web import NAME as WEB

    SECTIONS = (*SECTIONS, COLLECTIVE, ADVICE, WEB)

    parser = argparse.ArgumentParser(prog="python -m bench", description="Performance bench of the PTCE advisor.")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run, ~20 s)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the JSON (default: {DEFAULT_JSON})")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections among {', '.join(SECTIONS)}")
    parser.add_argument("--profile", action="store_true", help="profile the engine workload with cProfile instead")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    logging.basicConfig(level=logging.WARNING)
    sizes = QUICK if args.quick else FULL
    if args.profile:
        profile_engine(sizes)
        return 0
    report = run(sizes, only, quick=args.quick)
    print(report.table())
    print(
        f"\n{'quick' if args.quick else 'full'} run in {report.duration_s:.0f} s; "
        f"load average before {report.load_before}, after {report.load_after} ({report.machine['cpus']} CPUs)"
    )
    report.write_json(args.json)
    print(f"JSON written to {args.json}")
    if report.missed:
        print(f"{len(report.missed)} target(s) missed: " + "; ".join(f"{m.section}: {m.name}" for m in report.missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

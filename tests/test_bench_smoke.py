"""Smoke test of the performance bench (``python -m bench``): tiny sizes, structure only.

No timing is asserted here: the figures depend on the machine. What is checked is that
every measurement runs, reports its metrics with units and targets, and that the report
renders as a table and as JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import measures, team_measures
from bench.__main__ import main as bench_main
from bench.report import Metric, Report, Section, percentile, summarise_ms
from bench.workload import Workload, interleave, kind_of
from dialogue.buttons import STALE
from dialogue.types import Choose, Command, Say


@pytest.fixture(scope="module")
def sections(kb) -> dict[str, Section]:
    return {
        "engine": measures.engine_latency(users=3, events=12, kb=kb),
        "telegram": measures.telegram_throughput(users=3, events=6, upserts=20, kb=kb, pin=False),
        "telegram_latency": measures.telegram_latency(users=2, events=4, kb=kb, flood_accounts=3),
        "startup": measures.cold_start(runs=1, rss_events=20),
        "matcher": measures.matcher_quality(limit=12, kb=kb),
        "scale": measures.many_users(users=300, small_users=30, probe_existing=5, probe_new=2, events=8, kb=kb),
        "report": measures.pdf_report(runs=1),
        "team": team_measures.team(kb, users=3, events=8, log_rows=2000, workdir=measures.workdir),
        "dialogues": measures.dialogue_corpus(kb=kb),
    }


def _check(section: Section, name: str) -> None:
    assert section.name == name
    assert section.metrics, name
    for metric in section.metrics:
        assert isinstance(metric, Metric) and metric.section == name and metric.name
        assert metric.value is None or (isinstance(metric.value, (int, float)) and math.isfinite(metric.value)), metric
        assert (metric.target is None) == (metric.comparison is None), metric
        assert metric.ok in (True, False, None)
    json.dumps(section.to_json())  # serialisable


def test_every_section_reports_metrics(sections: dict[str, Section]) -> None:
    assert list(sections) == list(measures.SECTIONS)
    for name, section in sections.items():
        _check(section, name)


def test_sections_carry_their_targets(sections: dict[str, Section]) -> None:
    targets = {(m.section, m.comparison, m.target) for s in sections.values() for m in s.metrics if m.target is not None}
    assert ("engine", "<=", measures.P99_EVENT_MS) in targets
    assert ("telegram", ">=", measures.MIN_UPDATES_PER_S) in targets
    assert ("telegram", "<=", measures.MAX_FLOOR_RATIO) in targets
    assert ("startup", "<=", measures.MAX_COLD_START_S) in targets
    assert ("startup", "<=", measures.MAX_RSS_MB) in targets
    assert ("matcher", ">=", measures.MIN_TOP1 * 100) in targets
    assert ("scale", "<=", measures.MAX_GROWTH) in targets
    assert ("report", "<=", measures.MAX_REPORT_S) in targets
    assert ("report", "<=", measures.MAX_REPORT_KB) in targets
    assert ("dialogues", ">=", measures.MIN_DIALOGUE_PASS) in targets


def test_details(sections: dict[str, Section]) -> None:
    engine = sections["engine"].details
    assert engine["events"] == 3 * 12
    assert engine["stale_replies"] == 0  # the scripted workload only presses buttons it was shown
    telegram = sections["telegram"].details
    for kind in ("noop", "send", "replay", "engine"):
        assert telegram[kind]["updates"] == 3 * 6
        assert telegram[kind]["error_count"] == 0
    assert telegram["engine"]["bot_api_calls"]["sendMessage"] > 0
    assert telegram["replay"]["bot_api_calls"] == telegram["engine"]["bot_api_calls"]  # same replies delivered
    assert telegram["storage_floor"]["upserts"] == 20
    latency = sections["telegram_latency"].details
    for run in ("alone", "writer"):
        assert latency[run]["answered"] == latency[run]["updates"] == 2 * 4
    assert latency["team_flood"]["answered"] == 2 * 4  # the bystanders' updates only
    assert latency["team_flood"]["team_posts"] == latency["team_flood"]["handovers"] == 3
    startup = sections["startup"].details
    assert len(startup["runs_s"]) == 1 and startup["rss_child"]["events"] == 20 and startup["rss_child"]["peak_kb"] > 0
    assert sections["matcher"].details["questions"] == 12
    scale = sections["scale"].details
    assert scale["large"]["rows"]["users"] == 300 and scale["small"]["rows"]["users"] == 30
    assert scale["large"]["rows"]["answer_history"] == scale["large"]["rows"]["answers"]
    assert scale["large"]["stale_replies"] == 0
    assert scale["full_scans"] == []


def test_report_table_and_json(sections: dict[str, Section], tmp_path: Path) -> None:
    report = Report(quick=True, sections=list(sections.values()))
    table = report.table()
    for section in sections.values():
        for metric in section.metrics:
            assert metric.name in table
    path = tmp_path / "out" / "latest.json"
    report.write_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == 1 and data["quick"] is True
    assert set(data["sections"]) == set(measures.SECTIONS)
    assert data["summary"]["metrics"] == len(report.metrics)
    for section in data["sections"].values():
        assert {"metrics", "details", "notes"} <= set(section)
        for metric in section["metrics"]:
            assert {"name", "value", "unit", "target", "comparison", "ok"} <= set(metric)


def test_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "matcher.json"
    assert bench_main(["--only", "matcher", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "top-1 accuracy" in out and str(path) in out
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data["sections"]) == ["matcher"]


def test_command_line_rejects_unknown_section(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        bench_main(["--only", "nulle_part"])


def test_workload_scripts_are_deterministic_and_sized(kb) -> None:
    workload = Workload.from_kb(kb)
    first, again = workload.scripts(4, 30, seed=3), workload.scripts(4, 30, seed=3)
    assert first == again and all(len(script) == 30 for script in first)
    kinds = {kind_of(event) for script in first for event in script}
    assert {"command", "menu", "topic_page", "free_text", "flow_start", "answer", "toggle", "validate"} <= kinds
    order = interleave(first)
    assert len(order) == 120 and [user for user, _ in order[:4]] == [0, 1, 2, 3]
    assert all(isinstance(event, (Command, Choose, Say)) for _, event in order)


def test_workload_never_presses_a_stale_button(engine, kb) -> None:
    for number, script in enumerate(Workload.from_kb(kb).scripts(6, 40, seed=11)):
        for event in script:
            assert all(reply.text != STALE for reply in engine.handle(f"w{number}", event)), event


def test_percentiles() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99 and percentile(values, 1.0) == 100
    assert percentile([7], 0.99) == 7
    stats = summarise_ms([1_000_000, 2_000_000, 3_000_000])
    assert stats["p50_ms"] == 2.0 and stats["max_ms"] == 3.0 and stats["count"] == 3

"""Smoke test of the bench's web section: the real server, a few sessions, structure and zero errors (no timing asserted)."""

from __future__ import annotations

import json
import math

from bench import measures
from bench.web import MAX_P99_MS, MIN_FLOOR_RATIO, NAME, web_load


def test_web_section_reports_throughput_latency_errors_and_memory(kb) -> None:
    section = web_load(sessions=3, events=6, kb=kb, workdir=measures.workdir, pause=(0.0, 0.01))
    assert section.name == NAME
    values = {metric.name: metric.value for metric in section.metrics}
    assert values["errors (both runs)"] == 0, section.details
    assert all(value is None or math.isfinite(value) for value in values.values())
    assert section.details["saturation"]["turns"] == 18 and section.details["paced"]["turns"] == 18
    assert section.details["server_peak_rss_mb"] > 20
    targets = {(m.comparison, m.target) for m in section.metrics if m.target is not None}
    assert (">=", MIN_FLOOR_RATIO) in targets and ("<=", MAX_P99_MS) in targets
    json.dumps(section.to_json())

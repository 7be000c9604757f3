"""Smoke test of the « collective » bench section: tiny sizes, structure only (no timing asserted)."""

from __future__ import annotations

import json

from bench import collective, measures


def test_group_view_bench_reports_its_target(kb):
    section = collective.group_view(members=4, views=2, kb=kb, workdir=measures.workdir)
    assert section.name == "collective"
    targets = [(m.comparison, m.target) for m in section.metrics if m.target is not None]
    assert targets == [("<=", collective.MAX_VIEW_MS)]
    assert section.details["members"] == 4 and section.details["messages"] >= 1
    json.dumps(section.to_json())

"""Figures of one bench run: metrics with their targets, the table, the JSON file."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = 1


@dataclass
class Metric:
    """One measured figure and, when there is one, the target it is held to.

    ``comparison`` is ``"<="`` (value must not exceed target), ``">="`` (must reach it)
    or ``None`` for figures shown for information only.
    """

    section: str
    name: str
    value: float | int | None
    unit: str
    target: float | int | None = None
    comparison: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool | None:
        if self.target is None or self.comparison is None or self.value is None:
            return None
        if self.comparison == "<=":
            return self.value <= self.target
        if self.comparison == ">=":
            return self.value >= self.target
        raise ValueError(f"unknown comparison {self.comparison!r}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


@dataclass
class Section:
    """What one measuring function returns: its metrics and the raw details."""

    name: str
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value, unit: str, target=None, comparison: str | None = None, note: str = "") -> Metric:
        metric = Metric(self.name, name, value, unit, target, comparison, note)
        self.metrics.append(metric)
        return metric

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": [m.to_json() for m in self.metrics],
            "details": self.details,
            "notes": self.notes,
        }


def machine_info() -> dict[str, Any]:
    try:
        from importlib.metadata import version

        ptb = version("python-telegram-bot")
        sqlite_utils = version("sqlite-utils")
    except Exception:  # pragma: no cover - metadata missing
        ptb = sqlite_utils = "?"
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "python_telegram_bot": ptb,
        "sqlite_utils": sqlite_utils,
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Unix
        return None


@dataclass
class Report:
    quick: bool = False
    sections: list[Section] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)
    started_at: str = ""
    duration_s: float = 0.0
    load_before: list[float] | None = None
    load_after: list[float] | None = None

    @property
    def metrics(self) -> list[Metric]:
        return [m for s in self.sections for m in s.metrics]

    @property
    def missed(self) -> list[Metric]:
        return [m for m in self.metrics if m.ok is False]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 1),
            "quick": self.quick,
            "machine": self.machine | {"loadavg_before": self.load_before, "loadavg_after": self.load_after},
            "sections": {s.name: s.to_json() for s in self.sections},
            "summary": {
                "metrics": len(self.metrics),
                "with_target": sum(1 for m in self.metrics if m.ok is not None),
                "missed": [f"{m.section}: {m.name}" for m in self.missed],
            },
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    def table(self) -> str:
        rows = [("section", "measure", "value", "target", "")]
        for m in self.metrics:
            target = "—" if m.target is None else f"{m.comparison} {_fmt(m.target)} {m.unit}".rstrip()
            status = {True: "ok", False: "MISSED", None: ""}[m.ok]
            rows.append((m.section, m.name, f"{_fmt(m.value)} {m.unit}".rstrip(), target, status))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = []
        for index, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        notes = [f"- [{s.name}] {n}" for s in self.sections for n in s.notes]
        if notes:
            lines += ["", "Notes:", *notes]
        return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty list."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, -(-int(round(fraction * len(ordered) * 1000)) // 1000))  # ceil without float drift
    return ordered[min(rank, len(ordered)) - 1]


def summarise_ms(samples_ns: list[int]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds of nanosecond samples."""
    ms = [s / 1e6 for s in samples_ns]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 0.50),
        "p90_ms": percentile(ms, 0.90),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms),
        "mean_ms": sum(ms) / len(ms),
    }

"""Child process of the bench: build PDF reports like a running bot would, print figures as JSON.

``python -m bench.report_child --runs 5`` — the first report pays the lazy imports
(fpdf2, matplotlib); the next ones are what a running bot spends per report.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from datetime import date

from bench.rss_child import _peak_kb
from report.sample import SAMPLE_ANSWERS as FULL_PROFILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_child")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    from dialogue.types import ReportRequest
    from knowledge.loader import load_knowledge

    kb = load_knowledge()
    request = ReportRequest("formes", FULL_PROFILE, date(2026, 1, 15), "Pôle territorial des Coopérations du Val d’Œuvre")
    baseline_kb = _peak_kb()
    from report import build_report

    started = time.perf_counter()
    files = build_report(kb, request)
    first_s = time.perf_counter() - started
    times, cpu = [], []
    for _ in range(args.runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        files = build_report(kb, request)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    from pypdf import PdfReader

    print(
        json.dumps(
            {
                "first_s": first_s,
                "runs_s": times,
                "median_s": statistics.median(times),
                "median_cpu_s": statistics.median(cpu),
                "pdf_bytes": len(files.pdf),
                "png_bytes": len(files.png),
                "pages": len(PdfReader(io.BytesIO(files.pdf)).pages),
                "peak_before_kb": baseline_kb,
                "peak_kb": _peak_kb(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

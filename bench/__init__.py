"""Performance bench of the PTCE advisor: ``python -m bench`` (``make bench``).

One run measures, on this machine, five things and compares each figure with its
floor or target:

1. engine latency per event (p50/p99) over a mixed scripted workload, SQLite on disk;
2. throughput of the Telegram path (``Application`` fed through its update queue, offline
   ``BaseRequest``, per-user ordering on) next to a no-op application and a raw
   sqlite-utils upsert loop;
3. cold start of ``ptce-bot ask`` and peak RSS of a process handling 1,000 events;
4. the matcher on ``tests/data/questions.tsv`` (top-1 accuracy, time per question);
5. per-event latency with 100,000 users already stored, against a small database.

The figures are printed as a table and written as JSON (``bench/results/latest.json``).
The measuring functions live in :mod:`bench.measures`; each takes its sizes as arguments
so that the smoke test can run them tiny.
"""

from bench.report import Metric, Report  # noqa: F401

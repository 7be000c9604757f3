"""Child process of the bench: load the engine, handle N events, print peak RSS as JSON.

``python -m bench.rss_child --events 1000 --db /tmp/x.db``
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def _maxrss_kb() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rss_child")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from dialogue.engine import create_engine

    from bench.workload import Workload, interleave

    engine = create_engine(args.db)
    loaded_s = time.perf_counter() - started
    rss_loaded = _maxrss_kb()
    per_user = 30
    users = max(1, -(-args.events // per_user))
    order = interleave(Workload.from_kb(engine.kb).scripts(users, per_user))[: args.events]
    for user, event in order:
        engine.handle(f"rss:{user}", event)
    engine.close()
    print(
        json.dumps(
            {
                "events": len(order),
                "load_s": loaded_s,
                "total_s": time.perf_counter() - started,
                "maxrss_loaded_kb": rss_loaded,
                "maxrss_kb": _maxrss_kb(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

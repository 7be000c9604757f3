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
    """``getrusage`` peak RSS (KiB). On Linux it carries over exec the parent's size at fork."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KiB on Linux


def _peak_kb() -> int:
    """Peak RSS of this program's own memory: ``VmHWM`` on Linux, else ``getrusage``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return _maxrss_kb()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rss_child")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from bench.workload import Workload, interleave
    from dialogue.assembly import create_engine

    engine = create_engine(args.db)
    loaded_s = time.perf_counter() - started
    rss_loaded = _peak_kb()
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
                "peak_loaded_kb": rss_loaded,
                "peak_kb": _peak_kb(),
                "ru_maxrss_kb": _maxrss_kb(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

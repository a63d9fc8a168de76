"""Speed of the report path on realistic data: parse, load, read back, compute.

    python scripts/benchmark.py [--stores N] [--days D]

Uses the real 2023 hours and timezones (../shared/data) when present, else synthetic stores,
with generated polls. Prints seconds per phase; compare ratios within one run, not absolute
seconds across machines.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from storemon_assets.core.generate import generate_feeds
from storemon_assets.core.parsing import read_feed_file
from storemon_assets.db.engine import create_db_engine, create_tables
from storemon_assets.db.loading import load_feed
from storemon_assets.service import build_report
from storemon_assets.settings import sqlite_url

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "loop-2023"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=None, help="default: every real 2023 store")
    parser.add_argument("--days", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        real = (SHARED / "menu_hours.csv").exists()
        feeds = generate_feeds(
            stores=args.stores or (None if real else 10_000),
            days=args.days,
            seed=1,
            hours_file=SHARED / "menu_hours.csv" if real else None,
            timezones_file=SHARED / "timezones.csv" if real else None,
        )
        paths = feeds.write(scratch / "feeds")
        timings: dict[str, float] = {}

        def timed(name, fn):
            start = time.perf_counter()
            value = fn()
            timings[name] = time.perf_counter() - start
            return value

        parsed = timed("parse", lambda: [read_feed_file(p) for p in paths.values()])
        engine = create_db_engine(sqlite_url(scratch / "bench.db"))
        create_tables(engine)
        timed("load (SQLite)", lambda: [load_feed(engine, feed) for feed in parsed])
        result = timed("report", lambda: build_report(engine))

    print(
        f"{'real' if real else 'synthetic'} stores: {result.report.height:,}; polls read: {result.reads.window_polls:,}"
    )
    for name, seconds in timings.items():
        print(f"  {name:<14} {seconds:7.2f} s")
    print(f"  {'total':<14} {sum(timings.values()):7.2f} s")


if __name__ == "__main__":
    main()

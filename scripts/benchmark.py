"""Speed of the report path on realistic data: parse, load, read back, compute; then what the
status intervals add to a report run, and how fast the API's store pages answer.

    python scripts/benchmark.py [--stores N] [--days D] [--requests R]

Uses the real 2023 hours and timezones (../shared/data) when present, else synthetic stores,
with generated polls. Prints seconds per phase; compare ratios within one run, not absolute
seconds across machines.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from storemon_assets.core.generate import generate_feeds
from storemon_assets.core.parsing import read_feed_file
from storemon_assets.core.uptime import with_local_bounds
from storemon_assets.db.engine import create_db_engine, create_tables
from storemon_assets.db.loading import load_feed
from storemon_assets.db.queries import read_weekly_schedules
from storemon_assets.service import build_report, publish_current_report, write_report_text
from storemon_assets.settings import sqlite_url

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "loop-2023"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=None, help="default: every real 2023 store")
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per store page")
    parser.add_argument("--real", type=Path, default=SHARED, help="folder of the real menu_hours.csv/timezones.csv")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        real = (args.real / "menu_hours.csv").exists()
        feeds = generate_feeds(
            stores=args.stores or (None if real else 10_000),
            days=args.days,
            seed=1,
            hours_file=args.real / "menu_hours.csv" if real else None,
            timezones_file=args.real / "timezones.csv" if real else None,
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
        timed("write CSV", lambda: write_report_text(result.report, scratch / "report.csv"))

        print(
            f"{'real' if real else 'synthetic'} stores: {result.report.height:,}; "
            f"polls read: {result.reads.window_polls:,}"
        )
        for name, seconds in timings.items():
            print(f"  {name:<14} {seconds:7.2f} s")
        print(f"  {'total':<14} {sum(timings.values()):7.2f} s")
        status_intervals_cost(engine, result, timings["report"] + timings["write CSV"])
        store_pages_speed(engine, result, args.requests)


def status_intervals_cost(engine, result, report_seconds: float) -> None:
    """What the status intervals add to a report run: their wall-clock bounds (computed inside
    the report, timed again here on their own) and publishing them with the report's rows. The
    intervals themselves are not extra: the report's sums are computed from them."""
    intervals = result.uptime.intervals
    utc_only = intervals.select("store_id", "start_half_us", "end_half_us", "status")
    zones = read_weekly_schedules(engine, result.report.get_column("store_id")).select("store_id", "timezone").unique()
    start = time.perf_counter()
    with_local_bounds(utc_only, zones)
    local_bounds = time.perf_counter() - start
    start = time.perf_counter()
    publish_current_report(engine, result, "benchmark")
    publish = time.perf_counter() - start
    report_run = report_seconds - local_bounds
    added = local_bounds + publish
    print(f"status intervals: {intervals.height:,} rows")
    print(f"  report run without them   {report_run:7.2f} s  (report + write CSV - local bounds)")
    print(f"  local bounds              {local_bounds:7.2f} s")
    print(f"  publish (rows+intervals)  {publish:7.2f} s")
    print(f"  added                     {added:7.2f} s  = {100 * added / report_run:.0f} % of the report run")


def store_pages_speed(engine, result, requests: int) -> None:
    """Median and 95th-percentile answer times of /stores/{id} and its timeline.svg, in process
    (FastAPI's test client over the benchmark database), on random stores, after a warm-up."""
    from fastapi.testclient import TestClient

    from storemon_assets.api import create_app
    from storemon_assets.web.routes import store_database

    app = create_app(dagster_url="http://127.0.0.1:9", reports_dir=Path("."))
    app.dependency_overrides[store_database] = lambda: engine
    stores = result.report.get_column("store_id").to_list()
    picked = random.Random(1).sample(stores, min(requests, len(stores)))
    with TestClient(app) as client:
        for path in ("/stores/{}", "/stores/{}/timeline.svg"):
            client.get(path.format(picked[0]))  # warm-up: imports, caches, first figure
            seconds = []
            for store_id in picked:
                start = time.perf_counter()
                response = client.get(path.format(store_id))
                seconds.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
            seconds.sort()
            p95 = seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))]
            print(
                f"  GET {path:<24} median {1000 * statistics.median(seconds):6.1f} ms  "
                f"p95 {1000 * p95:6.1f} ms  ({len(seconds)} stores)"
            )


if __name__ == "__main__":
    main()

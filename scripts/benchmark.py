"""Speed and memory of the report path as the stored history grows (`make bench`); then what
the status intervals add to a report run, how fast the API's store pages answer, and the store
history's goals (scripts/history_benchmark.py: daily values, refresh, prune).

    python scripts/benchmark.py [--days 8,30,90] [--repeat 3] [--postgres URL] [--stores N]
                                [--real DIR] [--requests R]

Polls come from `storemon generate` for the real 2023 stores (--real: the folder of their hours
and timezones, default ../shared/data/loop-2023; synthetic stores when absent), in files of 8
days each: the newest file (T = its last poll, 2.35 million polls at the 13,584 real stores)
first, then older ones, so the history grows behind the same T as it does when a user loads
older data. At each point of the series it prints: parse and load seconds of the files added,
the report from the database (`build_report` in a fresh process, median of --repeat runs),
`storemon report` from the database as a whole process (seconds and peak RSS, median), and
database bytes per poll; once, `storemon report` on the three files of the newest 8 days end to
end. --postgres names a database the benchmark may empty; without it only SQLite is measured.

Timings on a shared machine are noisy: compare ratios within one run, not seconds across runs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from storemon_assets import settings
from storemon_assets.core.generate import DEFAULT_END
from storemon_assets.core.instants import format_instant, parse_as_of
from storemon_assets.core.parsing import read_feed_file
from storemon_assets.core.uptime import with_local_bounds
from storemon_assets.db.engine import create_db_engine, open_database
from storemon_assets.db.loading import load_feed
from storemon_assets.db.queries import read_weekly_schedules
from storemon_assets.service import build_report, publish_current_report
from storemon_assets.settings import sqlite_url

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "loop-2023"
BIN = Path(sys.executable).parent
CHUNK_DAYS = 8
US_PER_DAY = 86_400_000_000


@dataclass
class Point:
    engine: str
    days: int
    polls: int = 0
    parse_s: float = 0.0
    load_s: float = 0.0
    report_s: list[float] = field(default_factory=list)
    process_s: list[float] = field(default_factory=list)
    process_rss_mb: list[float] = field(default_factory=list)
    bytes_per_poll: float = 0.0


# Runs a command and reports its peak RSS. A child forked straight from this (large) process
# would be charged this process's memory too (Linux counts the image it replaces at exec), so
# a small launcher starts it and reports its children's peak instead.
LAUNCHER = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "print(f'maxrss_kb={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', file=sys.stderr); "
    "sys.exit(done.returncode)"
)


def run_measured(args: list[str], env: dict | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run a command; return its wall seconds and its own peak RSS in MB."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr}")
    *rest, last = done.stderr.rstrip("\n").split("\n")
    done.stderr = "\n".join(rest)
    return seconds, int(last.removeprefix("maxrss_kb=")) / 1024, done


# `build_report` timed in a process of its own: in this one, which has just parsed and loaded
# millions of polls, the same call measured up to 30 % slower (its heap, not the database).
TIME_REPORTS = (
    "import sys, time; from storemon_assets.db.engine import open_database; "
    "from storemon_assets.service import build_report; engine = open_database(sys.argv[1])\n"
    "for _ in range(int(sys.argv[2])):\n"
    "    start = time.perf_counter(); build_report(engine); print(time.perf_counter() - start)"
)


def report_seconds_in_fresh_process(url: str, repeat: int) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", TIME_REPORTS, url, str(repeat)], capture_output=True, text=True, check=True
    )
    return [float(line) for line in done.stdout.split()]


def generate_chunk(out: Path, index: int, stores: int | None, first: Path | None, real: Path) -> Path:
    """The index-th file of 8 days back from the default end (0 = the newest). Older files are
    made for the stores of the first (its hours and timezones), so every file has the same stores."""
    end_us = parse_as_of(DEFAULT_END.isoformat() + "Z") - index * CHUNK_DAYS * US_PER_DAY
    args = [str(BIN / "storemon"), "generate", "--days", str(CHUNK_DAYS), "--seed", str(index + 1)]
    args += ["--end", format_instant(end_us), "--out", str(out)]
    if first is not None:
        args += ["--hours", str(first / "menu_hours.csv"), "--timezones", str(first / "timezones.csv")]
    elif (real / "menu_hours.csv").exists():
        args += ["--hours", str(real / "menu_hours.csv"), "--timezones", str(real / "timezones.csv")]
        args += ["--stores", str(stores)] if stores else []
    else:
        args += ["--stores", str(stores or 10_000)]
    run_measured(args)
    return out


def database_bytes(engine: sa.Engine, path: Path | None) -> int:
    if path is not None:  # SQLite: the file, with the write-ahead log folded in
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).scalar()


def poll_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM store_status_polls").scalar()


def empty_postgres(url: str) -> sa.Engine:
    engine = create_db_engine(url)
    existing = sa.MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)
    return open_database(url)


def series(
    kind: str, url: str, path: Path | None, chunks: list[Path], days: list[int], repeat: int, extras=None
) -> list[Point]:
    """Load the history point by point and measure each; `extras(engine, result, seconds)` runs
    once, on the shortest history."""
    engine = open_database(url) if kind == "sqlite" else empty_postgres(url)
    points = []
    loaded = 0
    for point_days in days:
        point = Point(kind, point_days)
        needed = -(-point_days // CHUNK_DAYS)
        for index in range(loaded, needed):
            names = ["store_status.csv"] + (["menu_hours.csv", "timezones.csv"] if index == 0 else [])
            for name in names:
                start = time.perf_counter()
                feed = read_feed_file(chunks[index] / name)
                point.parse_s += time.perf_counter() - start
                start = time.perf_counter()
                load_feed(engine, feed)
                point.load_s += time.perf_counter() - start
                del feed
        loaded = needed
        start = time.perf_counter()
        point.polls = poll_count(engine)
        count_s = time.perf_counter() - start
        point.bytes_per_poll = database_bytes(engine, path) / point.polls
        point.report_s = report_seconds_in_fresh_process(url, repeat)
        result = build_report(engine) if extras is not None and not points else None
        for _ in range(repeat):
            seconds, rss, _ = run_measured(
                [str(BIN / "storemon"), "report", "--quiet", "--out", os.devnull],
                {**os.environ, settings.DATABASE_URL.name: url},
            )
            point.process_s.append(seconds)
            point.process_rss_mb.append(rss)
        points.append(point)
        print(
            f"  {kind} {point_days} days: {point.polls:,} polls, report {statistics.median(point.report_s):.2f} s "
            f"(COUNT(*) of the polls: {count_s:.2f} s)"
        )
        if extras is not None and len(points) == 1:
            extras(engine, result, statistics.median(point.report_s))
    engine.dispose()
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="8,30,90", help="history lengths to measure, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (the median is shown)")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL the benchmark may empty")
    parser.add_argument("--stores", type=int, default=None, help="a sample of the real stores (default: all)")
    parser.add_argument("--real", type=Path, default=SHARED, help="folder of the real menu_hours.csv/timezones.csv")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per store page")
    args = parser.parse_args()
    days = sorted(int(d) for d in args.days.split(","))

    with tempfile.TemporaryDirectory(prefix="storemon-bench-") as scratch:
        scratch = Path(scratch)
        chunks = []
        start = time.perf_counter()
        for index in range(-(-days[-1] // CHUNK_DAYS)):
            chunks.append(
                generate_chunk(scratch / f"chunk{index}", index, args.stores, chunks[0] if chunks else None, args.real)
            )
        print(f"generated {len(chunks)} files of {CHUNK_DAYS} days in {time.perf_counter() - start:.0f} s")

        newest = chunks[0]
        files = ["--status", str(newest / "store_status.csv"), "--hours", str(newest / "menu_hours.csv")]
        files += ["--timezones", str(newest / "timezones.csv")]
        end_to_end = [
            run_measured([str(BIN / "storemon"), "report", *files, "--quiet", "--out", os.devnull])
            for _ in range(args.repeat)
        ]

        def extras(engine, result, report_seconds):
            status_intervals_cost(engine, result, report_seconds)
            store_pages_speed(engine, result, args.requests)

        points = series(
            "sqlite", sqlite_url(scratch / "bench.db"), scratch / "bench.db", chunks, days, args.repeat, extras
        )
        # The store history's goals on the longest SQLite history (docs/history.md); the prune
        # they end with is the last use of that database.
        from history_benchmark import history_benchmarks, print_table

        history_rows = history_benchmarks(sqlite_url(scratch / "bench.db"), scratch / "bench.db", days[-1])
        if args.postgres:
            points += series("postgresql", args.postgres, None, chunks, days, args.repeat)

    print()
    print(f"`storemon report` on the three files of the newest {CHUNK_DAYS} days, end to end: ", end="")
    print(
        f"{statistics.median(s for s, _, _ in end_to_end):.2f} s, "
        f"peak RSS {statistics.median(r for _, r, _ in end_to_end):.0f} MB (median of {args.repeat})"
    )
    print()
    print(
        "| database | history | polls | parse (s) | load (s) | report from the database (s) "
        "| `storemon report` process (s) | its peak RSS (MB) | bytes per poll |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in points:
        print(
            f"| {p.engine} | {p.days} days | {p.polls:,} | {p.parse_s:.2f} | {p.load_s:.2f} "
            f"| {statistics.median(p.report_s):.2f} | {statistics.median(p.process_s):.2f} "
            f"| {statistics.median(p.process_rss_mb):.0f} | {p.bytes_per_poll:.1f} |"
        )
    print_table(history_rows)
    for engine in dict.fromkeys(p.engine for p in points):
        mine = [p for p in points if p.engine == engine]
        first, last = mine[0], mine[-1]
        print(
            f"{engine}: report at {last.days} days / at {first.days} days = "
            f"{statistics.median(last.report_s) / statistics.median(first.report_s):.2f}; peak RSS "
            f"{statistics.median(last.process_rss_mb) / statistics.median(first.process_rss_mb):.2f}"
        )


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

    app = create_app(dagster_url="http://127.0.0.1:9", reports_dir=Path("."), engine=engine)
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

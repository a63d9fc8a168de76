"""The store history's goals (docs/history.md), on a database holding a long history: `make bench`
runs them on its 90-day SQLite database; alone:

    python scripts/history_benchmark.py [--days 90] [--stores N] [--real DIR]

1. backfill of 30 and of 90 days of daily values into an empty table (one `daily_history` call,
   as the single-run Dagster backfill makes it), and their ratio (goal: 90 days <= 60 s, 30 days
   <= 0.4 x 90 days);
2. the hourly refresh: the report run, and the daily partitions the sensor asks for after an
   hour (stored rows as of T - 1 h, refreshed as of T: the current dates are computed, the rest
   hold), against the report run alone (goal: <= 1.3 x);
3. `storemon daily --days 90` reading stored values, as a whole process (goal: <= 1 s): with every
   value stored as of T, as operation leaves them (the headline), and as the refresh above left
   the table (older dates stored as of T - 1 h: the rows that may have changed are recomputed);
4. prune 90 -> 30 days (`storemon db prune`), and the SQLite file before and after (goal: <= 30 s,
   file >= 50 % smaller);
each in a process of its own with its peak RSS (goal: <= 1 GiB).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import BIN, CHUNK_DAYS, SHARED, generate_chunk, run_measured  # noqa: E402

from storemon_assets import settings  # noqa: E402
from storemon_assets.core.parsing import read_feed_file  # noqa: E402
from storemon_assets.db.engine import open_database  # noqa: E402
from storemon_assets.db.loading import load_feed  # noqa: E402
from storemon_assets.settings import sqlite_url  # noqa: E402

# Each measurement runs in a fresh process (run_measured reports its own peak RSS).
BACKFILL = """
import sys, time
from storemon_assets.db.engine import open_database
from storemon_assets.history import daily_history
engine = open_database(sys.argv[1])
days = int(sys.argv[2])
as_of = int(sys.argv[3]) if len(sys.argv) > 3 else None
with engine.begin() as conn:
    conn.exec_driver_sql("DELETE FROM store_daily_packed")
start = time.perf_counter()
h = daily_history(engine, as_of, days=days, use_stored=False, write=True)
print(f"{time.perf_counter() - start:.3f} {h.computed_rows}")
"""
# The hourly refresh as Dagster runs it: the report run (which also stores the refreshed dates
# from its own intervals), then the daily partitions the sensor asks for.
REFRESH = """
import sys, time, datetime as dt
from storemon_assets.db.engine import open_database
from storemon_assets.core.daily import refresh_ranges
from storemon_assets.db.queries import newest_poll_us
from storemon_assets.history import daily_history
from storemon_assets.service import build_report
import polars as pl
engine = open_database(sys.argv[1])
as_of = newest_poll_us(engine)
start = time.perf_counter()
build_report(engine, as_of, store_daily=True)
report_s = time.perf_counter() - start
computed = 0
empty = pl.DataFrame(schema={"first_poll_us": pl.Int64, "last_poll_us": pl.Int64})
for first, last in refresh_ranges(as_of, empty, dt.date(2000, 1, 1), dt.date(2100, 1, 1)):
    computed += daily_history(engine, as_of, first_date=first, last_date=last, write=True).computed_rows
print(f"{time.perf_counter() - start:.3f} {computed} {report_s:.3f}")
"""
REPORT = """
import sys, time
from storemon_assets.db.engine import open_database
from storemon_assets.service import build_report
engine = open_database(sys.argv[1])
start = time.perf_counter()
build_report(engine)
print(f"{time.perf_counter() - start:.3f}")
"""
# Every row that does not hold for T (the latest poll) computed and stored as of T.
HOLD = """
import sys, time
from storemon_assets.db.engine import open_database
from storemon_assets.history import daily_history
engine = open_database(sys.argv[1])
start = time.perf_counter()
h = daily_history(engine, None, days=int(sys.argv[2]), write=True)
print(f"{time.perf_counter() - start:.3f} {h.computed_rows}")
"""
HOUR_US = 3_600_000_000
DAILY_RUNS = 5
# Runs a command; prints its children's peak RSS and CPU time (user + system) on stderr.
TIMED_LAUNCHER = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(f'{u.ru_maxrss} {u.ru_utime + u.ru_stime:.3f}', file=sys.stderr); sys.exit(done.returncode)"
)


def measured(code: str, *args: str) -> tuple[float, float, list[str]]:
    """(seconds inside, peak RSS MB, printed fields) of a snippet run in a fresh process."""
    _, rss, done = run_measured([sys.executable, "-c", code, *args])
    fields = done.stdout.split()
    return float(fields[0]), rss, fields[1:]


def run_timed(args: list[str], env: dict) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MB, store-days computed) of one `storemon daily` process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", TIMED_LAUNCHER, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr}")
    *said, last = done.stderr.rstrip("\n").split("\n")
    rss_kb, cpu = last.split()
    computed = re.search(r"(\d+) computed", "\n".join(said))
    return seconds, float(cpu), int(rss_kb) / 1024, f"{int(computed.group(1)):,}" if computed else "?"


def daily_row(what: str, runs: list[tuple[float, float, float, str]], load: str) -> str:
    """A table line: the median wall time of the runs, their range, and the median CPU time."""
    walls = sorted(run[0] for run in runs)
    cpu = statistics.median(run[1] for run in runs)
    return (
        f"| {what}, whole process, median of {len(runs)} ({walls[0]:.2f}-{walls[-1]:.2f} s) "
        f"| {statistics.median(walls):.2f} s; CPU {cpu:.2f} s | {max(run[2] for run in runs):.0f} MB | {load} "
        "| <= 1 s |"
    )


def file_mb(path: Path) -> float:
    engine = open_database(sqlite_url(path))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path.stat().st_size / 2**20


def load_now() -> str:
    """The 1-minute load average, quoted beside each figure (the box is shared)."""
    return f"{os.getloadavg()[0]:.1f}"


def history_benchmarks(url: str, path: Path, days: int) -> list[str]:
    """Run the four measurements on a database of `days` days; returns the table's lines, each
    with the load average just before its measurement."""
    from storemon_assets.db.queries import newest_poll_us

    engine = open_database(url)
    as_of = newest_poll_us(engine)
    engine.dispose()
    rows = []
    short = min(30, days)
    load = load_now()
    s_short, rss_short, (n_short,) = measured(BACKFILL, url, str(short))
    load_long = load_now()
    s_long, rss_long, (n_long,) = measured(BACKFILL, url, str(days), str(as_of - HOUR_US))  # as of T - 1 h
    rows.append(
        f"| backfill {days} days of daily values ({int(n_long):,} store-days) | {s_long:.1f} s | {rss_long:.0f} MB "
        f"| {load_long} | <= 60 s |"
    )
    rows.append(
        f"| backfill {short} days ({int(n_short):,} store-days) | {s_short:.1f} s = {s_short / s_long:.2f} x {days} days "
        f"| {rss_short:.0f} MB | {load} | <= 0.4 x |"
    )
    load = load_now()
    report_s, report_rss, _ = measured(REPORT, url)
    refresh_s, refresh_rss, (refreshed, with_daily_s) = measured(REFRESH, url)
    rows.append(
        f"| hourly refresh: report run storing the refreshed dates {float(with_daily_s):.2f} s + daily partitions "
        f"{refresh_s - float(with_daily_s):.2f} s ({int(refreshed):,} store-days computed), against the report alone "
        f"{report_s:.2f} s | {refresh_s / report_s:.2f} x the report run | {max(report_rss, refresh_rss):.0f} MB "
        f"| {load} | <= 1.3 x |"
    )
    env = {**os.environ, settings.DATABASE_URL.name: url}
    daily = [str(BIN / "storemon"), "daily", "--days", str(min(days, 90)), "--quiet", "--out", str(path) + ".daily.csv"]
    # As the refresh left the table: the older dates stored as of T - 1 h by the backfill above, so
    # the rows that may have changed since (final_from after T - 1 h, or a store with no
    # observation then) are recomputed from the polls (docs/history.md).
    load = load_now()
    partly = [run_timed(daily, env) for _ in range(DAILY_RUNS)]
    # In operation every value is stored as of the latest poll (the hourly report run stores the
    # current dates, a backfill at T the rest): the daily command then only reads.
    _, _, (made_hold,) = measured(HOLD, url, str(days))
    held_load = load_now()
    held = [run_timed(daily, env) for _ in range(DAILY_RUNS)]
    rows.append(
        daily_row(
            f"`storemon daily --days {min(days, 90)}` from stored values, every value stored as of T (as the hourly "
            f"refresh at T and a backfill at T leave them; {int(made_hold):,} rows stored as of T first)",
            held,
            held_load,
        )
    )
    rows.append(
        daily_row(
            f"the same, values of the older dates stored as of T - 1 h ({partly[0][3]} store-days recomputed)",
            partly,
            load,
        )
    )
    before = file_mb(path)
    load = load_now()
    prune_s, prune_rss, _ = run_measured(
        [str(BIN / "storemon"), "db", "prune", "--retention-days", "30", "--quiet"], env
    )
    after = file_mb(path)
    rows.append(
        f"| prune {days} -> 30 days (`storemon db prune`) | {prune_s:.1f} s; file {before:.0f} -> {after:.0f} MB "
        f"({100 * (1 - after / before):.0f} % smaller) | {prune_rss:.0f} MB | {load} | <= 30 s, >= 50 % |"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--stores", type=int, default=None, help="a sample of the real stores (default: all)")
    parser.add_argument("--real", type=Path, default=SHARED)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="a folder for the generated database, kept between runs: a later run with the same folder copies it "
        "instead of generating and loading again (the measurements, which prune, run on the copy)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="storemon-history-bench-") as scratch:
        home = args.keep or Path(scratch)
        home.mkdir(parents=True, exist_ok=True)
        loaded = home / "loaded.db"
        days = -(-args.days // CHUNK_DAYS) * CHUNK_DAYS
        if not loaded.exists():
            build_database(loaded, home, args)
        else:
            print(f"reusing {loaded}")
        path = Path(scratch) / "bench.db"
        shutil.copyfile(loaded, path)
        print_table(history_benchmarks(sqlite_url(path), path, days))


def build_database(target: Path, home: Path, args: argparse.Namespace) -> None:
    """Generate 8-day polls files back from the default end and load them (hours and timezones
    with the first) into a new SQLite file at `target`, written under another name until done."""
    chunks: list[Path] = []
    for index in range(-(-args.days // CHUNK_DAYS)):
        chunks.append(
            generate_chunk(home / f"chunk{index}", index, args.stores, chunks[0] if chunks else None, args.real)
        )
    building = target.with_name(target.name + ".building")
    building.unlink(missing_ok=True)
    engine = open_database(sqlite_url(building))
    start = time.perf_counter()
    for index, chunk in enumerate(chunks):
        for name in ["store_status.csv"] + (["menu_hours.csv", "timezones.csv"] if index == 0 else []):
            load_feed(engine, read_feed_file(chunk / name))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    building.replace(target)
    for chunk in chunks:
        shutil.rmtree(chunk)
    print(f"loaded {len(chunks)} files of {CHUNK_DAYS} days in {time.perf_counter() - start:.0f} s")


def print_table(rows: list[str]) -> None:
    import datetime as dt

    print()
    print(f"measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores")
    print("| store history (SQLite) | measured | peak RSS | load average | goal |")
    print("| --- | --- | ---: | ---: | --- |")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()

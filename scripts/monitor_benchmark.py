"""What incidents and alerts add to a report, at the real fleet's size (docs/monitor.md).

    python scripts/monitor_benchmark.py [--stores 13600] [--days 8] [--repeat 5] [--down 500]

Generates `storemon generate --stores N --days D` into a fresh SQLite database, publishes the
report as of its last poll, then times (median of --repeat): the report (`build_report`), the
incidents and status now that the report run's publish step adds (`incidents_of`), the publish
itself (`publish_current_report`, which stores them with the report), and one alert evaluation
with nothing new to send (`evaluate_alerts` against a receiver; the steady state of every hourly
refresh). Then a storm: --down stores that were up get inactive polls over the next hour, and one
evaluation sends to a local receiver: the messages that arrived.

Timings on a shared machine are noisy: say the load average next to a figure (printed here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl

from storemon_assets.alerting import AlertSettings, evaluate_alerts
from storemon_assets.core.generate import generate_feeds
from storemon_assets.db.engine import open_database
from storemon_assets.service import build_report, incidents_of, ingest_files, publish_current_report
from storemon_assets.settings import sqlite_url


def receiver() -> tuple[str, list[dict]]:
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"json://127.0.0.1:{server.server_address[1]}/hook", got


def timed(action, repeat: int) -> tuple[float, object]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=13_600)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--down", type=int, default=500)
    args = parser.parse_args()
    url, got = receiver()
    with tempfile.TemporaryDirectory(prefix="storemon-monitor-") as scratch:
        folder = Path(scratch)
        feeds = generate_feeds(stores=args.stores, days=args.days, seed=1)
        paths = []
        for name, frame in (("polls", feeds.polls), ("hours", feeds.hours), ("timezones", feeds.timezones)):
            paths.append(folder / f"{name}.csv")
            frame.write_csv(paths[-1])
        engine = open_database(sqlite_url(folder / "storemon.db"))
        ingest_files(engine, paths)
        report_s, result = timed(lambda: build_report(engine), args.repeat)
        incidents_s, current = timed(
            lambda: incidents_of(engine, result.uptime.as_of_us, result.uptime.intervals, 120), args.repeat
        )
        plain_s, _ = timed(lambda: publish_current_report(engine, result, "bench", 120), args.repeat)
        settings = AlertSettings([url], 30, 20, None)
        evaluate_alerts(engine, settings)  # the first evaluation sends what is due: a storm of its own
        first_messages = len(got)
        steady_s, outcome = timed(lambda: evaluate_alerts(engine, settings), args.repeat)
        print(f"load average {os.getloadavg()[0]:.1f}; {result.store_count:,} stores, {args.days} days")
        print(f"report (build_report)        {report_s:7.3f} s")
        print(f"incidents and status now     {incidents_s:7.3f} s  ({current.incidents.height:,} incidents)")
        print(f"publish (with them)          {plain_s:7.3f} s")
        print(f"first alert evaluation sent  {first_messages} messages (summaries above 20 per kind)")
        print(f"alert evaluation, steady     {steady_s:7.3f} s  ({outcome.due} due)")

        # A storm: --down stores that were up get an inactive poll at T + 1 min and T + 31 min.
        as_of = current.as_of_us
        up = current.status.filter(pl.col("open_now") & (pl.col("status") == "up")).head(args.down)
        storm = pl.concat(
            [
                up.select("store_id", pl.lit("inactive").alias("status"), pl.lit(as_of + m * 60_000_000).alias("t"))
                for m in (1, 31, 61)
            ]
        ).with_columns(
            pl.from_epoch("t", time_unit="us").dt.strftime("%Y-%m-%d %H:%M:%S%.6f UTC").alias("timestamp_utc")
        )
        storm_path = folder / "storm.csv"
        storm.select("store_id", "status", "timestamp_utc").write_csv(storm_path)
        ingest_files(engine, [storm_path])
        # A stale limit of a week: the storm's polls move T by an hour, which would make every store
        # polled only hourly "not reporting" too; here only the down notifications are counted.
        publish_current_report(engine, build_report(engine), "storm", 7 * 24 * 60)
        before = len(got)
        started = time.perf_counter()
        stormed = evaluate_alerts(engine, settings)
        storm_s = time.perf_counter() - started
        titles = [m["title"] for m in got[before:]]
        print(f"storm: {up.height} stores down at once -> {len(titles)} message(s) {titles} in {storm_s:.3f} s")
        print(f"       ({stormed.describe()})")
        engine.dispose()


if __name__ == "__main__":
    main()

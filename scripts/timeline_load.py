"""`/summary` latency while many store pictures are asked for at once (issue 20 row 15).

    python scripts/timeline_load.py [--pictures 60] [--rounds 3]

Loads the bundled sample (100 stores) into a scratch database, publishes its report, starts
`storemon api` on it (the store pages need no Dagster), then, each round, asks for `--pictures`
different stores' `timeline.svg` at once while `/summary` is asked for every 0.1 s (open loop)
until they are all answered. Prints each round's `/summary` p50 / p95 / max and how long the
pictures took. The first round draws every picture; later rounds find them drawn already (the
cache holds pictures per report and store). Compare runs on one machine, and say the load average.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parents[1]
SUMMARY_INTERVAL = 0.1
sys.path.insert(0, str(REPO))

from storemon_assets import settings  # noqa: E402
from storemon_assets.db.engine import open_database  # noqa: E402
from storemon_assets.service import build_report, ingest_files, publish_current_report  # noqa: E402
from storemon_assets.settings import SAMPLE_DATA_DIR, sqlite_url  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def published_database(folder: Path) -> tuple[str, list[str]]:
    """A database holding the sample and its published report; its URL and store ids."""
    url = sqlite_url(folder / "storemon.db")
    engine = open_database(url)
    ingest_files(engine, sorted(SAMPLE_DATA_DIR.glob("*.csv")))
    result = build_report(engine)
    publish_current_report(engine, result, "load-test")
    engine.dispose()
    return url, result.report.get_column("store_id").to_list()


def wait_until_up(base: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the API did not start")


def one_round(base: str, stores: list[str]) -> tuple[list[float], float, int]:
    """The pictures at once, /summary meanwhile: (summary latencies, pictures' seconds, failures)."""
    done = threading.Event()
    failures = []

    def picture(store: str) -> None:
        try:
            response = httpx.get(f"{base}/stores/{quote(store, safe='')}/timeline.svg", timeout=120)
            if response.status_code != 200:
                failures.append(response.status_code)
        except httpx.HTTPError as exc:
            failures.append(type(exc).__name__)

    threads = [threading.Thread(target=picture, args=(store,)) for store in stores]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    latencies = []

    def summary() -> None:
        began = time.perf_counter()
        httpx.get(f"{base}/summary", timeout=120).raise_for_status()
        latencies.append(time.perf_counter() - began)

    def summaries() -> None:
        """One request every SUMMARY_INTERVAL s, each on its own, whether the last was answered or
        not: a user does not wait for another's answer (a closed loop would hide the waits)."""
        askers = []
        while not done.is_set():
            askers.append(threading.Thread(target=summary))
            askers[-1].start()
            time.sleep(SUMMARY_INTERVAL)
        for asker in askers:
            asker.join()

    poller = threading.Thread(target=summaries)
    poller.start()
    for thread in threads:
        thread.join()
    pictures_seconds = time.perf_counter() - started
    done.set()
    poller.join()
    return latencies, pictures_seconds, len(failures)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=60, help="timeline.svg requests at once (distinct stores)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="storemon-timeline-load-") as scratch:
        url, stores = published_database(Path(scratch))
        port = free_port()
        env = {**os.environ, settings.DATABASE_URL.name: url, settings.HOME.name: scratch}
        api = subprocess.Popen(
            [str(Path(sys.executable).parent / "storemon"), "api", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base)
            print(f"load average {os.getloadavg()[0]:.2f}; {args.pictures} pictures at once, /summary meanwhile")
            for round_number in range(1, args.rounds + 1):
                latencies, seconds, failed = one_round(base, stores[: args.pictures])
                print(
                    f"round {round_number}: /summary p50 {statistics.median(latencies) * 1000:.0f} ms, "
                    f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
                    f"({len(latencies)} requests); pictures {seconds:.2f} s, {failed} failed"
                )
        finally:
            api.terminate()
            api.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Scale benchmark: ingest, then the report job through Dagster with 1 vs N store shards.

    python scripts/benchmark_scale.py --stores 136000 --days 8 --shards 1,4,8,16 --repeat 3

Synthetic stores (`storemon generate`), an embedded SQLite database and a local Dagster instance
in a scratch folder (`--workdir` keeps and reuses them). For each shard count it runs
`dagster job execute ... -j report_job` `--repeat` times and prints the median wall time of the
whole command (process start to exit, as a user waits for it), the run's own time (RUN_START to
RUN_SUCCESS), and per step kind the median duration and the largest peak RSS any such step
reported. Shard counts above 1 run under `--executor` (default multiprocess: a process per step,
so each step's peak RSS is its own); 1 shard runs in process, the default deployment.
Other work on the machine adds noise: compare within one run and read the spread printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from storemon_assets import settings

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


INGEST = """
import sys
from storemon_assets import settings
from storemon_assets.db.engine import open_database
from storemon_assets.service import ingest_files
engine = open_database(settings.database_url())
ingest_files(engine, sys.argv[1:])
"""


POLLS_PER_FILE = 2_500_000  # about one L1 week: deliveries come in files, and each loads in one transaction


def split_polls(feeds: Path) -> None:
    """Cut a large generated poll file into delivery-sized files (the header on each)."""
    source = feeds / "store_status.csv"
    if not source.exists():
        return
    with source.open() as lines:
        header = next(lines)
        part, out = 0, None
        for number, line in enumerate(lines):
            if number % POLLS_PER_FILE == 0:
                if out:
                    out.close()
                out = (feeds / f"store_status_{part:03d}.csv").open("w")
                out.write(header)
                part += 1
            out.write(line)
        if out:
            out.close()
    source.unlink()


def child_run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of the child and its output."""
    start = time.perf_counter()
    process = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate()
    seconds = time.perf_counter() - start
    rss_mib = _children_peak_rss_mib()
    if process.returncode != 0:
        sys.exit(f"failed ({process.returncode}): {' '.join(args)}\n{output.decode()[-3000:]}")
    return seconds, rss_mib, output.decode()


def _children_peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest child so far


def run_steps(dagster_home: Path, run_id: str) -> tuple[float, list[tuple[str, float, float]]]:
    """The run's own seconds, and (step kind, seconds, peak RSS MiB) per step from its events."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.all_logs(run_id)
    stamps = {
        r.dagster_event.event_type: r.timestamp
        for r in records
        if r.dagster_event and r.dagster_event.event_type in (DagsterEventType.RUN_START, DagsterEventType.RUN_SUCCESS)
    }
    started = {r.step_key: r.timestamp for r in records if r.is_dagster_event and r.dagster_event.is_step_start}
    peaks: dict[str, float] = {}
    for r in records:
        if r.is_dagster_event and r.dagster_event.event_type == DagsterEventType.STEP_OUTPUT:
            value = r.dagster_event.step_output_data.metadata.get("peak_rss_mib")
            if value is not None:
                peaks[r.step_key] = float(value.value)
        if r.is_dagster_event and r.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            value = r.dagster_event.event_specific_data.materialization.metadata.get("peak_rss_mib")
            if value is not None:
                peaks[r.step_key] = float(value.value)
    steps = []
    for r in records:
        if r.is_dagster_event and r.dagster_event.is_step_success:
            kind = r.step_key.split("[")[0].split(".")[-1]
            steps.append((kind, r.timestamp - started[r.step_key], peaks.get(r.step_key, float("nan"))))
    return stamps[DagsterEventType.RUN_SUCCESS] - stamps[DagsterEventType.RUN_START], steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=13_600)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--shards", default="1,4", help="comma-separated shard counts")
    parser.add_argument("--executor", default="multiprocess", choices=["multiprocess", "in_process"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="keep data here and reuse it (default: a scratch folder)")
    args = parser.parse_args()

    work = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir()) / f"storemon-bench-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    feeds, db = work / "feeds", work / "data" / "storemon.db"
    env = {**os.environ, settings.HOME.name: str(work), "DAGSTER_HOME": str(work / "dagster_home")}
    env.pop(settings.DATABASE_URL.name, None)  # the embedded SQLite database under the work folder
    (work / "dagster_home").mkdir(exist_ok=True)
    shutil.copyfile(REPO / "deploy" / "local" / "dagster.yaml", work / "dagster_home" / "dagster.yaml")
    storemon = str(BIN / "storemon")
    try:
        if not any(feeds.glob("store_status*.csv")):
            seconds, _, _ = child_run(
                [storemon, "generate", "--stores", str(args.stores), "--days", str(args.days), "--out", str(feeds)], env
            )
            print(f"generate: {seconds:.1f} s")
        if not db.exists():
            split_polls(feeds)
            seconds, rss, _ = child_run([sys.executable, "-c", INGEST, *map(str, sorted(feeds.glob("*.csv")))], env)
            print(
                f"ingest (parse + load into SQLite, the code the ingest runs use): {seconds:.1f} s, peak RSS {rss:,.0f} MiB"
            )
        polls = sum(sum(1 for _ in part.open()) - 1 for part in feeds.glob("store_status*.csv"))
        print(f"{args.stores:,} stores, {polls:,} polls, database {db.stat().st_size / 2**20:,.0f} MiB")

        for shards in [int(s) for s in args.shards.split(",")]:
            executor = "in_process" if shards == 1 else args.executor
            run_env = {**env, settings.REPORT_SHARDS.name: str(shards), settings.EXECUTOR.name: executor}
            walls, runs, by_kind = [], [], {}
            for _ in range(args.repeat):
                job = [
                    str(BIN / "dagster"),
                    "job",
                    "execute",
                    "-m",
                    "storemon_assets.defs.definitions",
                    "-j",
                    "report_job",
                ]
                seconds, _, output = child_run(job, run_env)
                run_id = output.split("RUN_SUCCESS")[0].rsplit(" - report_job - ", 1)[1].split(" - ")[0]
                run_seconds, steps = run_steps(work / "dagster_home", run_id)
                walls.append(seconds)
                runs.append(run_seconds)
                for kind, step_seconds, rss in steps:
                    by_kind.setdefault(kind, []).append((step_seconds, rss))
            print(
                f"\n{shards} shard(s), {executor}: command {statistics.median(walls):.1f} s "
                f"(min {min(walls):.1f}, max {max(walls):.1f}), run {statistics.median(runs):.1f} s "
                f"(min {min(runs):.1f}, max {max(runs):.1f})"
            )
            for kind, values in by_kind.items():
                seconds = statistics.median(v[0] for v in values)
                print(f"  {kind:<22} median {seconds:6.1f} s, peak RSS max {max(v[1] for v in values):7,.0f} MiB")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

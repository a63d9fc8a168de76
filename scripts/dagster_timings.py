"""Where the time of a Dagster report goes: `trigger_report` to Complete, and the hourly cycle.

    python scripts/dagster_timings.py --feeds DIR [--triggers 5] [--hours 3] [--repo PATH]

Starts `dagster dev` (with the shipped instance config, deploy/local/dagster.yaml) and the
HTTP API on a throw-away home, drops the three files of DIR (e.g. `storemon generate` output for
the real 2023 stores, 8 days) into the landing folder and waits until Dagster has ingested them,
published the report and refreshed every store partition. Then:

- `--triggers` times POST /trigger_report -> GET /get_report says Complete, split by the run's
  own timestamps: API to enqueued, queue wait (run coordinator), launch (a fresh process that
  imports Dagster and the code location), run start to step start, the step, and run end to
  the API seeing it;
- `--hours` times the hourly cycle: one new hour of polls for every store (the last hour of
  DIR's polls moved an hour later) dropped into the landing folder, to the report refreshed:
  sensor pickup, and the one ingest-and-report run.

--repo runs another checkout (its .venv), e.g. an older release, for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import polars as pl

from storemon_assets import settings
from storemon_assets.local_servers import free_port, stop_process_group, wait_for


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except OSError:  # not listening yet
        return 0, {}, b""


def graphql(dagster_url: str, query: str, variables: dict | None = None) -> dict:
    _, _, body = http("POST", f"{dagster_url}/graphql", {"query": query, "variables": variables or {}})
    answer = json.loads(body)
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL: {answer['errors']}")
    return answer["data"]


RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId jobName status creationTime startTime endTime
    eventConnection(afterCursor: null) { events { __typename ... on MessageEvent { timestamp stepKey } } } } } }
}
"""


def run_events(dagster_url: str, run_id: str) -> dict:
    runs = graphql(dagster_url, RUNS_QUERY, {"filter": {"runIds": [run_id]}})["runsOrError"]["results"]
    return runs[0]


def busy_runs(dagster_url: str) -> int:
    query = (
        "query { runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED]}) { ... on Runs { count } } }"
    )
    return graphql(dagster_url, query)["runsOrError"]["count"]


def phases(run: dict, triggered: float, completed: float) -> dict[str, float]:
    """Seconds of each phase of a report run, from its events (timestamps in ms): the steps run
    from the first one's start to the last one's success."""
    events: dict[str, list[float]] = {}
    for event in run["eventConnection"]["events"]:
        events.setdefault(event["__typename"], []).append(float(event["timestamp"]) / 1000)
    enqueued = min(events.get("RunEnqueuedEvent", [run["creationTime"]]))
    starting = min(events.get("RunStartingEvent", [enqueued]))
    started = min(events.get("RunStartEvent", [run["startTime"]]))
    step_start = min(events.get("ExecutionStepStartEvent", [started]))
    step_end = max(events.get("ExecutionStepSuccessEvent", [step_start]))
    ended = run["endTime"]
    return {
        "API to enqueued": enqueued - triggered,
        "queue wait": starting - enqueued,
        "launch (process, imports)": started - starting,
        "to the first step's start": step_start - started,
        "the steps": step_end - step_start,
        "last step's end to run end": ended - step_end,
        "run end to Complete seen": completed - ended,
        "total": completed - triggered,
    }


def next_hour_of_polls(polls_file: Path, hours_later: int, out: Path) -> int:
    """The last hour of polls in `polls_file`, moved `hours_later` hours on; returns the rows."""
    frame = pl.read_csv(polls_file, infer_schema=False)
    at = pl.col("timestamp_utc").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f UTC")
    frame = frame.with_columns(at.alias("at"))
    newest = frame.get_column("at").max()
    last = frame.filter(pl.col("at") > newest - pl.duration(hours=1))
    moved = last.with_columns((pl.col("at") + pl.duration(hours=hours_later)).dt.strftime("%Y-%m-%d %H:%M:%S%.6f UTC"))
    moved.select("store_id", "status", pl.col("at").alias("timestamp_utc")).write_csv(out)
    return moved.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=Path, required=True, help="folder with the three CSV files")
    parser.add_argument("--triggers", type=int, default=5)
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    repo = args.repo.resolve()
    bin_dir = repo / ".venv" / "bin"

    with tempfile.TemporaryDirectory(prefix="storemon-dagster-") as scratch:
        home = Path(scratch)
        landing = home / "data" / "landing"
        landing.mkdir(parents=True)
        dagster_home = home / "dagster_home"
        dagster_home.mkdir()
        shutil.copyfile(repo / "deploy" / "local" / "dagster.yaml", dagster_home / "dagster.yaml")
        env = {**os.environ, settings.HOME.name: str(home), "DAGSTER_HOME": str(dagster_home)}
        port, api_port = free_port(), free_port()
        dagster_url, api_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{api_port}"
        log = (home / "dagster.log").open("wb")
        dagster = subprocess.Popen(
            [str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=repo,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        api = subprocess.Popen(
            [str(bin_dir / "storemon"), "api", "--host", "127.0.0.1", "--port", str(api_port)],
            cwd=repo,
            env={**env, settings.DAGSTER_URL.name: dagster_url},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(lambda: http("GET", f"{dagster_url}/server_info")[0] == 200, 180, "the webserver", 1)
            wait_for(lambda: http("GET", f"{api_url}/openapi.json")[0] == 200, 60, "the API", 1)
            start = time.monotonic()
            for name in ("menu_hours.csv", "timezones.csv", "store_status.csv"):
                shutil.copyfile(args.feeds / name, landing / name)
            report = home / "data" / "reports" / "combined_report.csv"
            wait_for(report.exists, 900, "the first report", 1)
            time.sleep(40)  # the schedules sensor's next ticks
            wait_for(lambda: busy_runs(dagster_url) == 0, 1800, "the store partitions", 2)
            print(f"first load, report and store partitions: {time.monotonic() - start:.0f} s")

            rows = []
            for _ in range(args.triggers):
                triggered = time.time()
                _, _, body = http("POST", f"{api_url}/trigger_report")
                report_id = json.loads(body)["report_id"]
                wait_for(
                    lambda rid=report_id: (
                        http("GET", f"{api_url}/get_report?report_id={rid}")[1].get("x-report-status") == "Complete"
                    ),
                    300,
                    "the report",
                    0.05,
                )
                rows.append(phases(run_events(dagster_url, report_id), triggered, time.time()))
                time.sleep(2)
            if rows:
                print(f"\ntrigger_report -> Complete (median of {len(rows)}; seconds)")
                for key in rows[0]:
                    values = [r[key] for r in rows]
                    print(f"  {key:<28} {statistics.median(values):6.2f}   ({', '.join(f'{v:.2f}' for v in values)})")

            print("\nhourly cycle: one new hour of polls dropped into the landing folder")
            for hour in range(1, args.hours + 1):
                new = home / f"hour_{hour}.csv"
                count = next_hour_of_polls(args.feeds / "store_status.csv", hour, new)
                before = report.stat().st_mtime_ns
                dropped = time.time()
                shutil.copyfile(new, landing / new.name)
                wait_for(lambda b=before: report.stat().st_mtime_ns != b, 300, "the refreshed report", 0.1)
                refreshed = time.time()
                tags = {"filter": {"tags": [{"key": "storemon/files", "value": new.name}]}}
                run = graphql(dagster_url, RUNS_QUERY, tags)["runsOrError"]["results"][0]
                wait_for(lambda rid=run["runId"]: run_events(dagster_url, rid)["endTime"], 120, "the run's end")
                run = run_events(dagster_url, run["runId"])
                print(
                    f"  {count:,} polls: dropped -> run created {run['creationTime'] - dropped:5.2f} s "
                    f"(sensor interval and settling), run {run['endTime'] - run['startTime']:5.2f} s "
                    f"(launch {run['startTime'] - run['creationTime']:4.2f} s before it), "
                    f"dropped -> report refreshed {refreshed - dropped:5.2f} s"
                )
                time.sleep(5)
        finally:
            for process in (api, dagster):
                stop_process_group(process)
            log.close()


if __name__ == "__main__":
    main()

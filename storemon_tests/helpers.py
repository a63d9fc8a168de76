"""Small builders so that tests read like the SPEC's examples."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from hypothesis import settings

from storemon_assets.core.business_time import weekly_schedule
from storemon_assets.core.parsing import parse_time_of_day_us, parse_timestamp_utc
from storemon_assets.core.uptime import UptimeReport, compute_uptime
from storemon_tests.conftest import StoremonHome

if TYPE_CHECKING:
    import dagster as dg

# The SPEC's worked example as a report row: store "s", open Monday 09:00-12:00 Chicago, active
# 10:14 and inactive 11:15 local, T = 12:00 local. Up 104.5 min (09:00 to the 10:44:30
# midpoint), down 75.5 min: 104.5 / 60 = 1.7416.. h -> 1.74, 75.5 / 60 = 1.2583.. h -> 1.26;
# the last hour (11:00-12:00 local, after the midpoint) all down, in minutes.
WORKED_EXAMPLE_ROW = {
    "store_id": "s",
    "uptime_last_hour": 0.0,
    "uptime_last_day": 1.74,
    "uptime_last_week": 1.74,
    "downtime_last_hour": 60.0,
    "downtime_last_day": 1.26,
    "downtime_last_week": 1.26,
}


def write_csv(folder: Path, name: str, text: str) -> Path:
    """Write one feed file as a delivery would (creating its folder); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def at(text: str) -> int:
    """'2023-01-16 16:14' (UTC) -> microseconds since the epoch."""
    return pl.select(parse_timestamp_utc(pl.lit(text))).item()


def example_report(
    polls: list[tuple[str, str, str]],
    hours: list[tuple[str, int, str, str]] = (),
    timezones: dict[str, str] | None = None,
    as_of: str | None = None,
) -> UptimeReport:
    """polls: (store, 'YYYY-MM-DD HH:MM[:SS]' UTC, status); hours: (store, day, start, end)."""
    poll_frame = pl.DataFrame(
        {"store_id": [p[0] for p in polls], "polled_at": [p[1] for p in polls], "status": [p[2] for p in polls]},
        schema={"store_id": pl.String, "polled_at": pl.String, "status": pl.String},
    ).select(  # the texts parsed as `at` parses one, all in one expression
        "store_id", parse_timestamp_utc(pl.col("polled_at")).cast(pl.Int64).alias("polled_at_us"), "status"
    )
    hours_frame = pl.DataFrame(
        {
            "store_id": [h[0] for h in hours],
            "day_of_week": [h[1] for h in hours],
            "start": [h[2] for h in hours],
            "end": [h[3] for h in hours],
        },
        schema={"store_id": pl.String, "day_of_week": pl.Int8, "start": pl.String, "end": pl.String},
    ).select(
        "store_id",
        "day_of_week",
        parse_time_of_day_us(pl.col("start")).alias("start_time_us"),
        parse_time_of_day_us(pl.col("end")).alias("end_time_us"),
    )
    tz_frame = pl.DataFrame(
        {"store_id": list((timezones or {}).keys()), "timezone_str": list((timezones or {}).values())},
        schema={"store_id": pl.String, "timezone_str": pl.String},
    )
    schedule = weekly_schedule(hours_frame, tz_frame, poll_frame.get_column("store_id"))
    return compute_uptime(poll_frame, schedule, at(as_of) if as_of else None)


def row(report: UptimeReport, store_id: str) -> dict:
    """The rounded report row of one store."""
    rows = report.report.filter(pl.col("store_id") == store_id).to_dicts()
    assert len(rows) == 1, f"expected one row for {store_id!r}, got {rows}"
    return rows[0]


def exact(report: UptimeReport, store_id: str) -> dict:
    """Exact sums of one store, converted from half-microseconds to seconds."""
    values = report.exact.filter(pl.col("store_id") == store_id).to_dicts()[0]
    return {k.removesuffix("_half_us"): v / 2_000_000 for k, v in values.items() if k.endswith("_half_us")}


MINUTE, HOUR = 60, 3600


def add_store_partitions(home, instance, cursor: str | None = None):
    """One tick of the store schedules sensor, its partition requests applied as the daemon applies
    them (before its run requests, which are returned, not launched)."""
    import dagster as dg

    from storemon_assets.defs.stores import store_schedules_sensor

    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=home.resources)
    result = store_schedules_sensor(context)
    for request in getattr(result, "dynamic_partitions_requests", None) or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


@dataclass
class SampleRun:
    home: StoremonHome
    result: dg.ExecuteInProcessResult


def sample_materialised(root: Path, migrated_sqlite: Path, assets: list) -> SampleRun:
    """The bundled sample files dropped into an empty home in `root` and `assets` materialised on
    them once, in an ephemeral Dagster instance closed before this returns (the run's result holds
    its events): for module fixtures whose tests only read what that one run did (test_assets'
    `sample_run`, test_publication's `loaded_database`)."""
    import dagster as dg

    from storemon_assets.settings import SAMPLE_DATA_DIR

    home = StoremonHome.in_folder(root, migrated_sqlite)
    home.drop(*sorted(SAMPLE_DATA_DIR.glob("*.csv")))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(assets, resources=home.resources, instance=instance)
    assert result.success
    return SampleRun(home, result)


def examples(full: int) -> int:
    """A property test's example count: `full` under Hypothesis's default profile, scaled by the
    loaded one's max_examples / 100 (`make test-fast` loads "fast", conftest.py: an eighth)."""
    return max(1, full * settings.default.max_examples // 100)


def run_storemon(*args: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess:
    """`storemon ARGS` (with the variables `env` set, None: unset) run in this process through `cli.main`: the
    parser, code and output of the installed script without a new interpreter importing polars,
    SQLAlchemy and Alembic (~0.7 s of CPU a call). What escapes is reported as Python would: an
    exception as a traceback on stderr and status 1, a warning on stderr. Tests whose subject is
    the process itself (installed entry point, resource limits) run the script instead."""
    from storemon_assets import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    saved = {name: os.environ.get(name) for name in env or {}}
    sigterm = signal.getsignal(signal.SIGTERM)  # main() sets its own for the commands that write files
    for name, value in (env or {}).items():
        _set_variable(name, value)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            warnings.resetwarnings()  # Python's default filters: what a user of the script would see
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            try:
                code = cli.main(list(args))
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) or exit.code is None else 1
                if not isinstance(exit.code, int) and exit.code is not None:
                    print(exit.code, file=sys.stderr)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        for name, value in saved.items():
            _set_variable(name, value)
    return subprocess.CompletedProcess(["storemon", *args], code or 0, stdout.getvalue(), stderr.getvalue())


def _set_variable(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def scenario_frames(stores: dict) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A property test's stores ({id: {"polls": [(at_us, status)], "rows": [(day, start_us,
    end_us)], "zone": name}}) as the parsed polls, weekly hours and timezones frames."""
    polls = pl.DataFrame(
        [(s, at_us, status) for s, d in stores.items() for at_us, status in d["polls"]],
        schema={"store_id": pl.String, "polled_at_us": pl.Int64, "status": pl.String},
        orient="row",
    )
    hours = pl.DataFrame(
        [(s, day, start, end) for s, d in stores.items() for day, start, end in d["rows"]],
        schema={"store_id": pl.String, "day_of_week": pl.Int8, "start_time_us": pl.Int64, "end_time_us": pl.Int64},
        orient="row",
    )
    zones = pl.DataFrame({"store_id": list(stores), "timezone_str": [d["zone"] for d in stores.values()]})
    return polls, hours, zones

"""The `storemon` command: its parser, code, output and exit status, run in process
(`run_storemon`: an escaping exception shows as Python's traceback and status 1, as the script's
would), and where the process itself is the subject (a file-size limit set on it) as a user runs
it: a subprocess of the installed script."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from storemon_assets.core.uptime import REPORT_COLUMNS
from storemon_assets.settings import SAMPLE_DATA_DIR, sqlite_url
from storemon_tests.conftest import shared_data
from storemon_tests.helpers import run_storemon, write_csv

STOREMON = shutil.which("storemon") or str(Path(sys.executable).parent / "storemon")


def storemon(*args: str) -> subprocess.CompletedProcess:
    return run_storemon(*args)


def storemon_report(feeds: Path, out: Path, *options: str, status: Path | None = None) -> subprocess.CompletedProcess:
    """`storemon report` on a folder holding the three feeds (`status`: another polls file)."""
    return storemon(
        "report",
        "--status",
        str(status or feeds / "store_status.csv"),
        "--hours",
        str(feeds / "menu_hours.csv"),
        "--timezones",
        str(feeds / "timezones.csv"),
        *options,
        "--out",
        str(out),
    )


@pytest.fixture(scope="module")
def real_stores_feeds(tmp_path_factory) -> Path:
    """Generated polls for 2,000 of the real 2023 stores, with their real hours and timezones."""
    out = tmp_path_factory.mktemp("feeds")
    done = storemon(
        "generate",
        "--hours",
        str(shared_data("loop-2023", "menu_hours.csv")),
        "--timezones",
        str(shared_data("loop-2023", "timezones.csv")),
        "--stores",
        "2000",
        "--days",
        "8",
        "--seed",
        "7",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    return out


def test_report_on_real_hours_and_timezones_with_generated_polls(real_stores_feeds, tmp_path):
    out = tmp_path / "report.csv"
    done = storemon_report(real_stores_feeds, out)
    assert done.returncode == 0, done.stderr
    assert "as of 2023-01-25T18:" in done.stderr
    report = pl.read_csv(out, schema_overrides={"store_id": pl.String})
    assert tuple(report.columns) == REPORT_COLUMNS
    assert (
        report.height
        == pl.read_csv(real_stores_feeds / "store_status.csv", infer_schema=False).get_column("store_id").n_unique()
    )
    assert report.get_column("store_id").to_list() == sorted(report.get_column("store_id").to_list())
    assert report.select(pl.exclude("store_id").min()).min_horizontal().item() >= 0
    assert report.get_column("uptime_last_hour").max() <= 60
    # Two decimals exactly, as text.
    first_line = out.read_text().splitlines()[1]
    assert all(len(v.split(".")[1]) == 2 for v in first_line.split(",")[1:])


def test_report_as_of_is_reproducible_whatever_arrives_later(real_stores_feeds, tmp_path):
    polls = pl.read_csv(real_stores_feeds / "store_status.csv", infer_schema=False)
    early = tmp_path / "early.csv"
    polls.filter(pl.col("timestamp_utc") < "2023-01-24").write_csv(early)
    as_of = ("--as-of", "2023-01-23T12:00:00Z")
    assert storemon_report(real_stores_feeds, tmp_path / "a.csv", *as_of, status=early).returncode == 0
    assert storemon_report(real_stores_feeds, tmp_path / "b.csv", *as_of).returncode == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_report_rejects_a_file_of_the_wrong_kind_with_one_line(real_stores_feeds, tmp_path):
    done = storemon_report(real_stores_feeds, tmp_path / "r.csv", status=real_stores_feeds / "menu_hours.csv")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "menu_hours.csv: expected a status-polls file but its header is that of a business-hours file" in done.stderr
    assert not (tmp_path / "r.csv").exists()


def test_report_on_a_missing_or_unreadable_file_exits_non_zero_without_traceback(tmp_path):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\xff\xfe\x00binary")
    for status in (str(tmp_path / "missing.csv"), str(garbage)):
        done = storemon(
            "report", "--status", status, "--hours", status, "--timezones", status, "--out", str(tmp_path / "r.csv")
        )
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("storemon: error: ")


def test_a_poll_from_the_future_is_rejected_and_does_not_move_t(tmp_path):
    # Issue 9 row 4: one poll dated 9999-12-31 moved T for every store, with exit 0 and no word.
    polls = SAMPLE_DATA_DIR / "store_status.csv"
    with_future = tmp_path / "polls.csv"
    with_future.write_text(polls.read_text() + "future-store,active,9999-12-31 00:00:00 UTC\n")
    feeds = ["--hours", str(SAMPLE_DATA_DIR / "menu_hours.csv"), "--timezones", str(SAMPLE_DATA_DIR / "timezones.csv")]
    clean = storemon("report", "--status", str(polls), *feeds, "--out", str(tmp_path / "clean.csv"))
    done = storemon("report", "--status", str(with_future), *feeds, "--out", str(tmp_path / "future.csv"))
    assert clean.returncode == done.returncode == 0
    rejected = [int(d.stderr.rsplit(", ", 1)[1].split()[0]) for d in (clean, done)]
    assert "as of 2023-01-25T18:" in done.stderr and rejected[1] == rejected[0] + 1
    # Why, named per file before its scratch database goes (the sample's two bad rows, and this one).
    assert "\npolls.csv: 3 rejected: " in done.stderr and "timestamp_utc is from the future" in done.stderr
    assert (tmp_path / "future.csv").read_text() == (tmp_path / "clean.csv").read_text()


def test_bad_as_of_is_a_clear_error(real_stores_feeds, tmp_path):
    done = storemon_report(real_stores_feeds, tmp_path / "r.csv", "--as-of", "last tuesday")
    assert done.returncode == 2 and "as-of time 'last tuesday' is not a timestamp" in done.stderr


def test_generate_is_reproducible_from_its_seed_and_uses_the_real_feed_quirks(tmp_path):
    for name in ("a", "b"):
        assert (
            storemon(
                "generate", "--stores", "50", "--days", "2", "--seed", "5", "--out", str(tmp_path / name)
            ).returncode
            == 0
        )
    for file in ("store_status.csv", "menu_hours.csv", "timezones.csv"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    polls = (tmp_path / "a" / "store_status.csv").read_text().splitlines()
    assert polls[0] == "store_id,status,timestamp_utc"
    assert all(line.endswith(" UTC") for line in polls[1:])
    assert (tmp_path / "a" / "menu_hours.csv").read_text().startswith("store_id,day,start_time_local,end_time_local")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stores", "5", "--days", "0"], "--days must be at least 1"),
        (["--hours", "{bad}"], "bad.csv: no store_id column (header: a,b)"),
        (["--hours", "/nonexistent/hours.csv"], "No such file or directory"),
    ],
)
def test_generate_refuses_bad_arguments_with_one_line(tmp_path, args, message):
    bad = write_csv(tmp_path, "bad.csv", "a,b\n1,2\n")
    done = storemon("generate", *[a.format(bad=bad) for a in args], "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr and done.stderr.strip().count("\n") == 0


def test_generate_works_for_a_handful_of_stores(tmp_path):
    # Regression: with few stores some hours profile got no store and its empty frame broke.
    done = storemon("generate", "--stores", "3", "--days", "1", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "store_status.csv").read_text().count("\n") > 3


# --- the configured database ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_feeds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small")
    done = storemon("generate", "--stores", "60", "--days", "9", "--seed", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def storemon_on(database: Path, *args: str) -> subprocess.CompletedProcess:
    """`storemon ...` with STOREMON_DATABASE_URL naming `database`."""
    return run_storemon(*args, env={"STOREMON_DATABASE_URL": sqlite_url(database)})


def test_ingest_loads_each_file_in_one_line_and_still_loads_the_rest_after_an_unreadable_one(small_feeds, tmp_path):
    database = tmp_path / "storemon.db"
    junk = tmp_path / "junk.csv"
    junk.write_text("order_id,amount\n1,2\n")
    files = [small_feeds / "menu_hours.csv", junk, small_feeds / "store_status.csv", small_feeds / "timezones.csv"]
    done = storemon_on(database, "ingest", *map(str, files))
    assert done.returncode == 2  # one file was unreadable
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("menu_hours.csv: loaded, hours, ")
    assert lines[1].startswith("junk.csv: unrecognised header 'order_id,amount'")
    assert lines[2].startswith("store_status.csv: loaded, polls, ") and lines[2].endswith(" rejected")
    assert lines[3].startswith("timezones.csv: loaded, timezones, ")
    # Progress went to stderr: one line per phase, with counts and seconds (the database opened
    # first, as for the other commands that use it).
    assert "load store_status.csv: " in done.stderr and " s)" in done.stderr
    assert done.stderr.startswith(f"open database: {sqlite_url(database)} (")

    again = storemon_on(database, "ingest", "--quiet", *map(str, files[2:]))
    assert again.returncode == 0
    assert again.stdout.splitlines() == ["store_status.csv: already loaded", "timezones.csv: already loaded"]
    assert again.stderr == ""  # --quiet: no progress


def test_report_without_feed_files_comes_from_the_configured_database(small_feeds, tmp_path):
    database = tmp_path / "storemon.db"
    names = ("store_status.csv", "menu_hours.csv", "timezones.csv")
    assert storemon_on(database, "ingest", "--quiet", *(str(small_feeds / n) for n in names)).returncode == 0
    as_of = ["--as-of", "2023-01-24T06:00:00Z"]
    from_database = storemon_on(database, "report", *as_of, "--out", str(tmp_path / "db.csv"))
    assert from_database.returncode == 0, from_database.stderr
    assert "read polls: " in from_database.stderr and "as of 2023-01-24T06:00:00" in from_database.stderr
    from_files = storemon(
        "report",
        *("--status", str(small_feeds / names[0]), "--hours", str(small_feeds / names[1])),
        *("--timezones", str(small_feeds / names[2]), *as_of, "--quiet", "--out", str(tmp_path / "files.csv")),
    )
    assert from_files.returncode == 0, from_files.stderr
    assert (tmp_path / "db.csv").read_text() == (tmp_path / "files.csv").read_text()
    assert (tmp_path / "db.csv").read_text().count("\n") == 61  # header + 60 stores
    assert "WARNING" not in from_database.stderr + from_files.stderr
    # T years after the newest poll: the statuses at T are guesses, and the command says so.
    now = storemon_on(database, "report", "--as-of", "now", "--quiet", "--out", str(tmp_path / "now.csv"))
    assert now.returncode == 0, now.stderr
    assert "\nWARNING: stale data: T (" in now.stderr and "days after the newest poll loaded" in now.stderr
    # T before every poll (a mistyped year): an empty report, and the command says why.
    before = storemon_on(database, "report", "--as-of", "2022-01-24T06:00:00Z", "--out", str(tmp_path / "b.csv"))
    assert before.returncode == 0, before.stderr
    assert (tmp_path / "b.csv").read_text().count("\n") == 1  # the header alone
    assert "\nWARNING: no data: no store was polled at or before T (2022-01-24T06:00:00" in before.stderr


def test_report_from_files_takes_special_hours_as_an_optional_fourth_file(tmp_path):
    # The sample's special hours: store 1971607333245639153 (Chicago, open 10:00-22:00 daily)
    # opens only 10:00-14:00 on Tuesday 2023-01-24. T = 01-25 18:12:56 UTC = 12:12:56 CST, so the
    # last day is 01-24 12:12:56 .. 01-25 12:12:56 CST: 9.78 + 2.22 = 12 business hours without
    # it, 1.78 + 2.22 = 4 with it; the week loses the 8 h of 14:00-22:00 (all up: 76.36 -> 68.36).
    feeds = [f"--{flag}={SAMPLE_DATA_DIR / name}" for flag, name in FEED_FLAGS]
    special = f"--special={SAMPLE_DATA_DIR / 'special_hours.csv'}"
    assert storemon("report", "--quiet", *feeds, "--out", str(tmp_path / "three.csv")).returncode == 0
    done = storemon("report", "--quiet", *feeds, special, "--out", str(tmp_path / "four.csv"))
    assert done.returncode == 0, done.stderr
    three, four = (
        pl.read_csv(tmp_path / n, schema_overrides={"store_id": pl.String}) for n in ("three.csv", "four.csv")
    )
    store = "1971607333245639153"
    assert three.filter(pl.col("store_id") == store).select("uptime_last_day", "uptime_last_week").row(0) == (
        12.0,
        76.36,
    )
    assert four.filter(pl.col("store_id") == store).select("uptime_last_day", "uptime_last_week").row(0) == (4.0, 68.36)
    # The same four files ingested into a database give the same report.
    database = tmp_path / "s.db"
    ingested = storemon_on(
        database, "ingest", "--quiet", *(str(SAMPLE_DATA_DIR / n) for _, n in FEED_FLAGS), special[10:]
    )
    assert ingested.returncode == 0, ingested.stderr
    assert "special_hours.csv: loaded, special_hours, 5 rows, 0 rejected" in ingested.stdout
    assert storemon_on(database, "report", "--quiet", "--out", str(tmp_path / "db.csv")).returncode == 0
    assert (tmp_path / "db.csv").read_text() == (tmp_path / "four.csv").read_text()
    # --special alone is no report from files.
    alone = storemon_on(database, "report", special, "--out", str(tmp_path / "r.csv"))
    assert alone.returncode == 2 and "--special goes with --status, --hours and --timezones" in alone.stderr


FEED_FLAGS = (("status", "store_status.csv"), ("hours", "menu_hours.csv"), ("timezones", "timezones.csv"))


def test_report_wants_all_three_feed_files_or_none(tmp_path):
    done = storemon_on(tmp_path / "s.db", "report", "--status", "polls.csv", "--out", str(tmp_path / "r.csv"))
    assert done.returncode == 2
    assert "give all three of --status, --hours and --timezones, or none" in done.stderr


def test_report_from_an_empty_database_writes_just_the_header(tmp_path):
    done = storemon_on(tmp_path / "s.db", "report", "--out", str(tmp_path / "r.csv"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.csv").read_text().splitlines() == [",".join(REPORT_COLUMNS)]
    assert "as of (no polls)" in done.stderr


def test_incidents_from_the_configured_database_sum_to_the_reports_downtime(small_feeds, tmp_path):
    database = tmp_path / "storemon.db"
    names = ("store_status.csv", "menu_hours.csv", "timezones.csv")
    assert storemon_on(database, "ingest", "--quiet", *(str(small_feeds / n) for n in names)).returncode == 0
    as_of = ["--as-of", "2023-01-24T06:00:00Z"]
    done = storemon_on(database, "incidents", *as_of, "--out", str(tmp_path / "incidents.csv"))
    assert done.returncode == 0, done.stderr
    assert "as of 2023-01-24T06:00:00.000000Z" in done.stderr
    assert storemon_on(database, "report", "--quiet", *as_of, "--out", str(tmp_path / "report.csv")).returncode == 0
    incidents = pl.read_csv(
        tmp_path / "incidents.csv", schema_overrides={"store_id": pl.String, "ended_utc": pl.String}
    )
    assert incidents.columns == ["store_id", "started_utc", "ended_utc", "downtime_minutes", "open"]
    assert incidents.height > 0 and incidents.get_column("started_utc").str.ends_with("Z").all()
    # Each store's incidents, in minutes, are its downtime_last_week in hours (both rounded: within 0.01 h).
    report = pl.read_csv(tmp_path / "report.csv", schema_overrides={"store_id": pl.String})
    summed = incidents.group_by("store_id").agg((pl.col("downtime_minutes").sum() / 60).alias("hours"))
    both = report.join(summed, on="store_id", how="left").with_columns(pl.col("hours").fill_null(0.0))
    assert both.filter((pl.col("hours") - pl.col("downtime_last_week")).abs() > 0.01).is_empty()


def test_incidents_with_a_bad_as_of_is_one_line(tmp_path):
    done = storemon_on(tmp_path / "s.db", "incidents", "--as-of", "soon", "--out", str(tmp_path / "i.csv"))
    assert done.returncode == 2 and "as-of time 'soon' is not a timestamp" in done.stderr
    assert not (tmp_path / "i.csv").exists()


def test_ingest_on_a_locked_database_says_so_in_one_line_per_file_and_fails(small_feeds, tmp_path):
    # Issue 20 row 10: a 40-line SQLAlchemy traceback (SQL and parameters), and the remaining
    # files were not tried.
    database = tmp_path / "storemon.db"
    assert storemon_on(database, "ingest", "--quiet", str(small_feeds / "timezones.csv")).returncode == 0
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        # In process: SQLite's lock holds between connections of one process as between processes.
        env = {"STOREMON_DATABASE_URL": sqlite_url(database), "STOREMON_SQLITE_BUSY_TIMEOUT": "0.2"}
        files = [str(small_feeds / n) for n in ("menu_hours.csv", "store_status.csv")]
        done = run_storemon("ingest", "--quiet", *files, env=env)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 2
    assert done.stdout.splitlines() == [
        "menu_hours.csv: not loaded: database is locked",
        "store_status.csv: not loaded: database is locked",
    ]
    assert done.stderr == ""


def test_ingest_into_a_file_that_is_not_a_database_says_so_in_one_line(small_feeds, tmp_path):
    database = write_csv(tmp_path, "storemon.db", "store_id,timezone_str\n" * 200)  # not SQLite's header
    done = storemon_on(database, "ingest", str(small_feeds / "timezones.csv"))
    assert done.returncode == 2
    assert (done.stdout, done.stderr) == ("", "storemon: error: cannot open the database: file is not a database\n")


def test_ingest_on_a_full_disk_says_so_and_still_tries_the_other_files(small_feeds, tmp_path):
    import resource

    database = tmp_path / "storemon.db"
    assert storemon_on(database, "ingest", "--quiet", str(small_feeds / "timezones.csv")).returncode == 0
    tiny = write_csv(tmp_path, "tiny.csv", "store_id,timezone_str\nsmall,Asia/Beirut\n")
    # No file may grow past 64 KiB more than the database has now: the polls do not fit, the
    # one-row timezone file does (Python ignores SIGXFSZ, so the write fails with EFBIG, which
    # SQLite reports as "disk I/O error"; a really full disk says "database or disk is full").
    limit = database.stat().st_size + 64 * 1024
    done = subprocess.run(
        [STOREMON, "ingest", "--quiet", str(small_feeds / "store_status.csv"), str(tiny)],
        capture_output=True,
        text=True,
        env={**os.environ, "STOREMON_DATABASE_URL": sqlite_url(database)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    assert done.returncode == 2
    first, second = done.stdout.splitlines()
    assert first.startswith("store_status.csv: not loaded: ") and "Traceback" not in done.stdout + done.stderr
    assert second.startswith("tiny.csv: loaded, timezones, 1 rows")


def test_report_on_a_full_disk_fails_in_one_line_and_leaves_no_temporary_file(tmp_path, small_disk):
    out = small_disk.folder / "rep.csv"
    small_disk.fill()
    done = storemon_on(tmp_path / "s.db", "report", "--out", str(out))
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"storemon: error: cannot write {out}: No space left on device"
    assert [p.name for p in small_disk.folder.iterdir()] == ["filler"]


def test_report_sweeps_the_temporary_files_a_killed_report_left_beside_its_target(tmp_path):
    killed = tmp_path / ".rep.csv.4242.tmp"  # a `storemon report --out rep.csv` killed an hour ago
    writing = tmp_path / ".rep.csv.4343.tmp"  # another one, writing right now
    other = tmp_path / ".other.csv.4242.tmp"  # not the report's: not ours to remove
    for path in (killed, writing, other):
        path.write_text("store_id,")
    for path in (killed, other):
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    done = storemon_on(tmp_path / "s.db", "report", "--out", str(tmp_path / "rep.csv"))
    assert done.returncode == 0, done.stderr
    assert not killed.exists() and writing.exists() and other.exists()


def test_ingest_applies_hours_delivered_again_in_delivery_order(tmp_path):
    header = "store_id,dayOfWeek,start_time_local,end_time_local\n"
    v1 = write_csv(tmp_path, "v1.csv", header + "1,0,09:00,17:00\n1,1,09:00,17:00\n")
    v2 = write_csv(tmp_path, "v2.csv", header + "1,0,10:00,18:00\n")
    done = storemon_on(tmp_path / "s.db", "ingest", "--quiet", str(v1), str(v2), str(v1))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "v1.csv: loaded, hours, 2 rows, 0 rejected",
        "v2.csv: loaded, hours, 1 rows, 0 rejected; WARNING: 1 stores lost weekdays they had: 1",
        "v1.csv: loaded again (delivered before: its rows are current again), hours, 2 rows, 0 rejected",
    ]


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("4", "4")])
def test_the_process_own_command_sets_up_its_process_and_a_caller_keeps_its_own(given, expected):
    # main() without arguments runs this process's command line, which ends next: it gives numpy
    # one OpenBLAS thread before numpy loads (a spinning thread is CPU paid for nothing; a user's
    # own count wins), and exempts every object from the garbage collector at the end (the exit
    # then frees nothing one by one). A caller passing arguments (tests, in process) keeps its
    # environment and its collector. Importing the command line loads no numpy.
    code = (
        "import gc, os, sys; from storemon_assets import cli; loaded = 'numpy' in sys.modules; "
        "cli.main(['sla', '--month', 'January', '--out', os.devnull]); "
        "called = (os.environ.get('OPENBLAS_NUM_THREADS', 'unset'), gc.get_freeze_count() > 0); "
        "sys.argv = ['storemon', 'sla', '--month', 'January', '--out', os.devnull]; status = cli.main(); "
        "print(loaded, *called, os.environ.get('OPENBLAS_NUM_THREADS'), gc.get_freeze_count() > 0, status)"
    )
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        environment["OPENBLAS_NUM_THREADS"] = given
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
    assert "is not a month" in done.stderr  # main ran the command
    assert done.stdout.split() == ["False", given or "unset", "False", expected, "True", "2"]


@pytest.mark.parametrize(
    ("command", "returncode", "tokens"),
    [
        (["token", "create", "--name", "ops", "--scope", "admin"], 0, [("ops",)]),
        (["token", "revoke", "nobody"], 2, []),
        (["daily", "--out", os.devnull], 0, []),
    ],
    ids=["token create", "a refused token revoke", "daily"],
)
def test_the_process_own_command_leaves_its_database_whole_in_one_file(
    tmp_path, migrated_sqlite, command, returncode, tokens
):
    # main() spares the exit its garbage collection, which used to close forgotten connections:
    # every command closes its own, so SQLite merges its write-ahead log into the file (no -wal
    # left beside it, and the file alone holds what the command wrote).
    database = tmp_path / "s.db"
    shutil.copyfile(migrated_sqlite, database)  # a database with the schema, as a user's
    code = "import sys; from storemon_assets.cli import main; sys.exit(main())"
    env = os.environ | {"STOREMON_DATABASE_URL": sqlite_url(database)}
    done = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, env=env)
    assert done.returncode == returncode, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("select name from api_tokens").fetchall() == tokens

"""Retention (SPEC §11): pruning changes no answer for a T after the cutoff's week (report,
status intervals, daily values), later polls older than the cutoff are rejected, and old run
reports go while combined_report.csv stays. (A prune killed with kill -9: test_retention_kill.py.)"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storemon_assets.core.business_time import US_PER_DAY, US_PER_HOUR
from storemon_assets.core.generate import generate_feeds
from storemon_assets.core.tables import REJECTED_ROWS
from storemon_assets.db.engine import open_database
from storemon_assets.db.loading import BEFORE_RETENTION_CUTOFF
from storemon_assets.db.queries import newest_poll_us, read_table, retention_cutoff
from storemon_assets.history import daily_history, delete_old_report_files, prune
from storemon_assets.service import COMBINED_REPORT_NAME, build_report, ingest_files
from storemon_tests.helpers import write_csv

POLLS_HEADER = "store_id,status,timestamp_utc\n"


def generated_database(folder: Path, stores: int, days: int, seed: int) -> sa.Engine:
    feeds = generate_feeds(stores, days, seed)
    paths = feeds.write(folder / "feeds")
    engine = open_database(f"sqlite:///{folder / 'storemon.db'}")
    ingest_files(engine, sorted(paths.values()))
    return engine


def answers(engine: sa.Engine, as_of_us: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What a user can ask for T: the report's exact sums, its status intervals, 30 days of daily values."""
    report = build_report(engine, as_of_us)
    daily = daily_history(engine, as_of_us, days=30).values
    return report.uptime.exact, report.uptime.intervals, daily


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 1000),
    retention_days=st.integers(8, 14),
    later_hours=st.lists(st.integers(0, 5 * 24), min_size=1, max_size=3),
)
def test_pruning_never_changes_an_answer_for_a_t_after_the_cutoffs_week(
    tmp_path_factory, seed, retention_days, later_hours
):
    engine = generated_database(tmp_path_factory.mktemp("prune"), stores=25, days=24, seed=seed)
    newest = newest_poll_us(engine)
    # T values after the cutoff's week: the cutoff is newest - retention, its week ends 7 days later.
    cutoff = newest - retention_days * US_PER_DAY
    moments = sorted({max(cutoff + 7 * US_PER_DAY + US_PER_HOUR, newest - h * US_PER_HOUR) for h in later_hours})
    before = {t: answers(engine, t) for t in moments}
    polls_before = read_table(engine, REJECTED_ROWS).height  # unchanged by a prune
    outcome = prune(engine, retention_days)
    assert outcome.polls_deleted > 0 and outcome.cutoff_us == cutoff
    for t in moments:
        after = answers(engine, t)
        for name, old, new in zip(("exact sums", "intervals", "daily values"), before[t], after, strict=True):
            assert new.equals(old), f"{name} changed for T = {t}"
    assert read_table(engine, REJECTED_ROWS).height == polls_before
    engine.dispose()


def test_a_poll_older_than_the_cutoff_arriving_later_is_rejected(tmp_path):
    engine = generated_database(tmp_path, stores=5, days=12, seed=3)
    outcome = prune(engine, 8)
    assert retention_cutoff(engine) == outcome.cutoff_us
    cutoff = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=outcome.cutoff_us)
    old = (cutoff - dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    new = (cutoff + dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    late = write_csv(tmp_path, "late.csv", POLLS_HEADER + f"s1,active,{old} UTC\ns1,inactive,{new} UTC\n")
    (loaded,) = ingest_files(engine, [late])
    assert (loaded.rows_loaded, loaded.rows_rejected) == (1, 1)
    rejected = read_table(engine, REJECTED_ROWS).filter(pl.col("file_name") == "late.csv").to_dicts()
    assert [(r["line_number"], r["reason"]) for r in rejected] == [(2, BEFORE_RETENTION_CUTOFF)]
    assert rejected[0]["raw_text"].startswith("s1,active,")
    engine.dispose()


def test_a_retention_under_eight_days_is_refused(tmp_path, monkeypatch):
    from storemon_assets import settings as storemon_settings

    monkeypatch.setenv("STOREMON_RETENTION_DAYS", "7")
    with pytest.raises(ValueError, match="keep at least 8 days"):
        storemon_settings.retention_days()
    monkeypatch.setenv("STOREMON_RETENTION_DAYS", "0")
    assert storemon_settings.retention_days() == 0
    engine = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(ValueError, match="at least 8 days"):
        prune(engine, 5)
    engine.dispose()


def test_old_run_reports_are_deleted_and_the_combined_report_never(tmp_path):
    now = time.time()
    old, recent, combined = (tmp_path / name for name in ("run-old.csv", "run-new.csv", COMBINED_REPORT_NAME))
    for path in (old, recent, combined):
        path.write_text("store_id\n")
    for path in (old, combined):  # 31 days old
        os.utime(path, (now - 31 * 86_400, now - 31 * 86_400))
    assert delete_old_report_files(tmp_path, 30, now) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == [COMBINED_REPORT_NAME, "run-new.csv"]


def test_the_sqlite_file_shrinks_after_a_prune(tmp_path):
    engine = generated_database(tmp_path, stores=40, days=24, seed=8)
    newest = newest_poll_us(engine)
    last = (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=newest)).date()
    # The daily values a prune stores first, stored beforehand, so only the deletion changes the file.
    daily_history(engine, first_date=last - dt.timedelta(days=95), last_date=last, write=True)

    def pages() -> tuple[int, int]:
        with engine.connect() as conn:
            return tuple(conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in ("page_count", "freelist_count"))

    before, _ = pages()
    outcome = prune(engine, 8)
    after, free = pages()
    assert outcome.polls_deleted > 0 and outcome.daily_rows_computed == 0
    assert free == 0 and after < before  # freed pages went back to the file system (migration 0007's mode)
    engine.dispose()


def test_the_current_reports_own_copy_is_kept_however_old(tmp_path):
    # Publication repairs combined_report.csv from <current report id>.csv after a crash, so
    # retention must never take that copy, even when the data (and the report) are months old.
    now = time.time()
    current, other = tmp_path / "run-current.csv", tmp_path / "run-other.csv"
    for path in (current, other):
        path.write_text("store_id\n")
        os.utime(path, (now - 31 * 86_400, now - 31 * 86_400))
    assert delete_old_report_files(tmp_path, 30, now, current_report_id="run-current") == [other]
    assert [p.name for p in tmp_path.iterdir()] == ["run-current.csv"]

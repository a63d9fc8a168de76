"""End to end against the real thing: `dagster dev` (webserver and daemon), sensors on by
default, a file dropped into the landing folder, the report refreshed with no click."""

from __future__ import annotations

import re
import shutil

import httpx
import polars as pl
import pytest

from storemon_assets.settings import SAMPLE_DATA_DIR
from storemon_tests.dagster_server import dagster_dev, wait_for
from storemon_tests.helpers import write_csv

pytestmark = pytest.mark.e2e


def report_rows(home):
    path = home / "data" / "reports" / "combined_report.csv"
    if not path.exists():
        return None
    return pl.read_csv(path, schema_overrides={"store_id": pl.String})


def test_dropped_poll_file_updates_the_report_without_a_click(tmp_path):
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    for source in SAMPLE_DATA_DIR.glob("*.csv"):
        shutil.copy(source, landing / source.name)

    with dagster_dev(tmp_path) as url:
        # The shipped instance config turns the first-visit prompt off: the UI opens on the project.
        nux = httpx.post(f"{url}/graphql", json={"query": "{ shouldShowNux }"}, timeout=30).json()
        assert nux == {"data": {"shouldShowNux": False}}
        # The sensor finds the sample files, ingests them and publishes the report.
        first = wait_for(lambda: report_rows(tmp_path), 180, "the first report")
        assert first.height == 100

        write_csv(
            landing, "late_polls.csv", "store_id,status,timestamp_utc\ne2e-store,inactive,2023-01-25 18:30:00 UTC\n"
        )

        def has_new_store():
            rows = report_rows(tmp_path)
            return rows if rows is not None and "e2e-store" in rows.get_column("store_id").to_list() else None

        updated = wait_for(has_new_store, 180, "the report to include the dropped polls")
        assert updated.height == 101
        assert updated.filter(pl.col("store_id") == "e2e-store").get_column("downtime_last_hour").to_list() == [60.0]
        # The store partitions follow: the schedules of all 101 stores get stored.
        import sqlite3

        def schedules_stored():
            with sqlite3.connect(tmp_path / "data" / "storemon.db") as conn:
                return conn.execute("select count(distinct store_id) from store_schedules").fetchone()[0] == 101 or None

        wait_for(schedules_stored, 120, "the store partitions to be materialised")

    # A quiet console: no warnings at all (Dagster's beta and "superseded" notices, a missing
    # dagster.yaml), and one summary line per store-schedules run instead of one per partition.
    console = (tmp_path / "dagster_dev.log").read_text()
    assert not re.findall(r".*(?:Warning|WARNING).*", console)
    assert re.search(r"refreshed the schedules of 10[01] stores", console)  # 101 if the late file came first
    assert "ASSET_MATERIALIZATION" not in console

"""deploy/dagster.yaml, the server instance, exercised for real: `dagster dev` with runs, event
logs and schedules in PostgreSQL, and storemon's own database on PostgreSQL too."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
import sqlalchemy as sa

from storemon_assets.local_servers import SERVER_INSTANCE_CONFIG, dagster_dev, wait_for
from storemon_assets.settings import SAMPLE_DATA_DIR
from storemon_tests.conftest import dagster_postgres_env, fresh_postgres_database, fresh_postgres_engine, postgres_url

pytestmark = pytest.mark.e2e


def test_dagster_dev_on_the_server_instance_keeps_runs_and_events_in_postgres(tmp_path):
    instance_url = fresh_postgres_database("dagster_instance")
    fresh_postgres_engine().dispose()  # storemon's tables, empty
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    for source in SAMPLE_DATA_DIR.glob("*.csv"):
        shutil.copy(source, landing / source.name)
    combined = tmp_path / "data" / "reports" / "combined_report.csv"
    env = {**dagster_postgres_env(instance_url), "STOREMON_DATABASE_URL": postgres_url()}

    instance = sa.create_engine(instance_url)

    def finished_runs():
        with instance.connect() as conn:
            runs = conn.execute(sa.text("select pipeline_name, status from runs")).all()
        return runs if runs and all(status in ("SUCCESS", "FAILURE", "CANCELED") for _, status in runs) else None

    with dagster_dev(tmp_path, env, instance_config=SERVER_INSTANCE_CONFIG):
        # The landing sensor (ticks in PostgreSQL) launches the ingest-and-report run; the run
        # record lives in PostgreSQL, so that is where the test waits for it to end.
        wait_for(lambda: combined.exists(), 180, "the report published by the sensor's run")
        runs = wait_for(finished_runs, 120, "the run to end")

    assert pl.read_csv(combined, schema_overrides={"store_id": pl.String}).height == 100
    try:
        with instance.connect() as conn:
            report_events = conn.execute(
                sa.text(
                    "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' "
                    "and asset_key = :key"
                ),
                {"key": '["uptime_report"]'},
            ).scalar_one()
            ticks = conn.execute(sa.text("select count(*) from job_ticks")).scalar_one()
    finally:
        instance.dispose()
    assert ("ingest_and_report_job", "SUCCESS") in runs
    assert report_events >= 1
    assert ticks >= 1  # sensor ticks: schedule storage is PostgreSQL too
    # Nothing of the instance's storage fell back to SQLite files under DAGSTER_HOME.
    assert not list((tmp_path / "dagster_home").rglob("*.db"))

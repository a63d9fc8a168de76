"""The schema is made and changed by Alembic migrations only, and a database of the last
release upgrades in place with nothing lost, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from storemon_assets.core.business_time import weekly_schedule
from storemon_assets.core.feeds import HOURS, POLLS, TIMEZONES
from storemon_assets.core.parsing import read_feed_file
from storemon_assets.core.tables import STORED_TABLES, STORES
from storemon_assets.core.uptime import report_csv
from storemon_assets.db.engine import create_db_engine, open_database
from storemon_assets.db.migrate import HEAD_REVISION, head_of_scripts, schema_drift, schema_revision, upgrade_schema
from storemon_assets.db.queries import read_table
from storemon_assets.service import build_report, ingest_files
from storemon_assets.settings import SAMPLE_DATA_DIR, sqlite_url
from storemon_tests.conftest import empty_postgres_engine
from storemon_tests.helpers import run_storemon

DATA = Path(__file__).resolve().parent / "data"
RELEASE_FEEDS = (POLLS, HOURS, TIMEZONES)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request, tmp_path):
    engine = (
        empty_postgres_engine() if request.param == "postgresql" else create_db_engine(sqlite_url(tmp_path / "s.db"))
    )
    yield engine
    engine.dispose()


def test_the_head_revision_constant_is_the_newest_migration():
    # The start-up check compares against HEAD_REVISION without loading Alembic's scripts.
    assert head_of_scripts() == HEAD_REVISION


def test_a_fresh_database_is_made_by_the_migrations_and_matches_the_declarations(empty_engine):
    assert upgrade_schema(empty_engine) == (None, HEAD_REVISION)
    assert set(sa.inspect(empty_engine).get_table_names()) == {t.name for t in STORED_TABLES} | {"alembic_version"}
    assert schema_drift(empty_engine) == []
    assert upgrade_schema(empty_engine) == (HEAD_REVISION, HEAD_REVISION)  # a current database: nothing to do


def test_the_drift_check_sees_a_database_that_differs_from_the_declarations(empty_engine):
    upgrade_schema(empty_engine)
    with empty_engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_stores_store_id")
        conn.exec_driver_sql("ALTER TABLE store_timezones ADD COLUMN surprise TEXT")
    drift = schema_drift(empty_engine)
    assert {diff[0] for diff in drift} == {"add_index", "remove_column"}
    assert "ix_stores_store_id" in str(drift) and "surprise" in str(drift)


# --- a database of the last release ---------------------------------------------------------


def create_release_database(engine: sa.Engine) -> None:
    """The release's tables, from the DDL its create_all emitted (kept in storemon_tests/data)."""
    lines = (DATA / f"release_0.1.0_{engine.dialect.name}.sql").read_text().splitlines()
    script = "\n".join(line for line in lines if not line.startswith("--"))
    with engine.begin() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        for statement in filter(str.strip, script.split(";\n")):
            cursor.execute(statement)
        cursor.close()


def load_like_the_release(engine: sa.Engine, paths: list[Path]) -> None:
    """What the release's loader wrote for these files: text store ids and statuses."""
    feeds = {feed.kind: feed for feed in map(read_feed_file, paths)}
    polls, hours, zones = feeds["polls"], feeds["hours"], feeds["timezones"]
    rows = {
        "store_status_polls": polls.rows.select("store_id", "polled_at_us", "status").unique(),
        "business_hours": hours.rows.select("store_id", "day_of_week", "start_time_us", "end_time_us")
        .unique()
        .with_columns(pl.lit(hours.path.name).alias("source_file")),
        "store_timezones": zones.rows.select("store_id", "timezone_str").with_columns(
            pl.lit(zones.path.name).alias("source_file")
        ),
        "rejected_rows": pl.concat(
            [
                feed.rejected.with_columns(
                    pl.lit(feed.sha256).alias("file_sha256"),
                    pl.lit(feed.path.name).alias("file_name"),
                    pl.lit(feed.kind).alias("kind"),
                )
                for feed in feeds.values()
            ]
        ).select("file_sha256", "line_number", "file_name", "kind", "store_id", "raw_text", "reason"),
        "ingested_files": pl.DataFrame(
            [
                (f.sha256, f.path.name, f.kind, 1_700_000_000_000_000, f.rows_read, f.rows.height, f.rejected.height)
                for f in feeds.values()
            ],
            schema=["file_sha256", "file_name", "kind", "ingested_at_us", "rows_read", "rows_loaded", "rows_rejected"],
            orient="row",
        ),
        "store_schedules": weekly_schedule(hours.rows, zones.rows, polls.rows.get_column("store_id").unique())
        .drop("special_date")  # the release's schedules had weekly rows only
        .head(50),
    }
    with engine.begin() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        for table, frame in rows.items():
            insert = f"INSERT INTO {table} ({', '.join(frame.columns)}) VALUES "
            if engine.dialect.name == "postgresql":
                # Pages of rows per statement: psycopg2's executemany sends one statement a row
                # (17,640 polls: ~1.5 s of round trips).
                from psycopg2.extras import execute_values

                execute_values(cursor, insert + "%s", frame.rows(), page_size=5000)
            else:
                cursor.executemany(insert + f"({', '.join('?' for _ in frame.columns)})", frame.rows())
        cursor.close()


def release_contents(engine: sa.Engine) -> dict[str, pl.DataFrame]:
    """Every row of every release table, sorted; polls with their store ids and status texts."""
    contents = {}
    with engine.connect() as conn:
        for table in ("business_hours", "store_timezones", "rejected_rows", "ingested_files", "store_schedules"):
            result = conn.exec_driver_sql(f"SELECT * FROM {table}")
            contents[table] = pl.DataFrame(result.all(), schema=list(result.keys()), orient="row").sort(
                pl.all(), nulls_last=True
            )
        if sa.inspect(conn).has_table(STORES.name):
            query = (
                "SELECT s.store_id, p.polled_at_us, CASE WHEN p.active THEN 'active' ELSE 'inactive' END "
                "FROM store_status_polls p JOIN stores s ON s.store_key = p.store_key"
            )
        else:
            query = "SELECT store_id, polled_at_us, status FROM store_status_polls"
        polls = conn.exec_driver_sql(query).all()
    contents["polls"] = pl.DataFrame(polls, schema=["store_id", "polled_at_us", "status"], orient="row").sort(pl.all())
    return contents


def test_a_release_database_upgrades_in_place_at_start_with_nothing_lost(empty_engine, tmp_path):
    # The sample's files of the release's three feeds (it knew no special hours).
    files = sorted(SAMPLE_DATA_DIR.glob("*.csv"))
    files = [path for path in files if read_feed_file(path).kind in RELEASE_FEEDS]
    create_release_database(empty_engine)
    load_like_the_release(empty_engine, files)
    before = release_contents(empty_engine)
    assert before["polls"].height > 17_000
    assert before["rejected_rows"].height == 2  # the sample's two bad poll rows

    # Opening the database (what every storemon process does first) upgrades it.
    upgraded = open_database(empty_engine.url.render_as_string(hide_password=False))
    with upgraded.connect() as conn:
        assert schema_revision(conn) == HEAD_REVISION
    assert schema_drift(upgraded) == []
    after = release_contents(upgraded)
    # Migration 0006 gave the schedules a special_date column: null on every weekly row.
    assert after["store_schedules"].get_column("special_date").is_null().all()
    for table, rows in before.items():  # columns added later (the ledger's poll range, 0007) stay empty
        assert after[table].select(rows.columns).equals(rows), table
    assert after["ingested_files"].get_column("first_poll_us").null_count() == len(files)
    if upgraded.dialect.name == "sqlite":  # 0007: pruned pages can be handed back (db/migrate.py)
        with upgraded.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2
    assert read_table(upgraded, STORES).height == before["polls"].get_column("store_id").n_unique()

    # The report is the one a fresh database gives for the same files, and the ledger still
    # knows every file: delivering them again loads nothing.
    fresh = open_database(sqlite_url(tmp_path / "fresh.db"))
    ingest_files(fresh, files)
    assert report_csv(build_report(upgraded).report) == report_csv(build_report(fresh).report)
    assert all(outcome.already_loaded for outcome in ingest_files(upgraded, files))
    upgraded.dispose()


def test_storemon_db_upgrade_upgrades_the_configured_database(tmp_path):
    path = tmp_path / "storemon.db"
    engine = create_db_engine(sqlite_url(path))
    create_release_database(engine)
    load_like_the_release(engine, sorted(SAMPLE_DATA_DIR.glob("*.csv")))
    engine.dispose()
    # In process (`run_storemon`: the script's parser, code and output; a new interpreter would
    # only add ~0.7 s of imports per call), the database named by the variable a user sets.
    env = {"STOREMON_DATABASE_URL": sqlite_url(path)}
    done = run_storemon("db", "upgrade", env=env)
    assert done.returncode == 0, done.stderr
    assert f"upgraded from the release schema (0.1.0) to revision {HEAD_REVISION}" in done.stderr
    again = run_storemon("db", "upgrade", env=env)
    assert again.returncode == 0 and f"already at revision {HEAD_REVISION}" in again.stderr


def test_processes_starting_together_upgrade_once(tmp_path):
    path = tmp_path / "storemon.db"
    engine = create_db_engine(sqlite_url(path))
    create_release_database(engine)
    load_like_the_release(engine, sorted(SAMPLE_DATA_DIR.glob("*.csv")))
    polls = release_contents(engine)["polls"]
    results, errors = [], []

    def start():
        try:
            results.append(upgrade_schema(create_db_engine(sqlite_url(path))))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results.count((None, HEAD_REVISION)) == 1 and results.count((HEAD_REVISION, HEAD_REVISION)) == 2
    assert release_contents(engine)["polls"].equals(polls)


def test_status_intervals_are_carried_into_the_clustered_table(empty_engine):
    # 0003 made store_status_intervals a rowid table; 0004 moves SQLite's into its key's
    # B-tree (WITHOUT ROWID) and adds the current report's tables. Nothing is lost.
    from alembic import command

    from storemon_assets.db.migrate import _alembic_config

    with empty_engine.connect() as connection:
        command.upgrade(_alembic_config(connection), "0003")
        connection.commit()
    rows = [("s", 10, 21, "up", 4, 10), ("s", 21, 30, "down", 10, 15), ("t", 0, 8, "no_data", 0, 4)]
    with empty_engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO store_status_intervals VALUES (:a, :b, :c, :d, :e, :f)"),
            [dict(zip("abcdef", row, strict=True)) for row in rows],
        )
    assert upgrade_schema(empty_engine) == ("0003", HEAD_REVISION)
    assert schema_drift(empty_engine) == []
    with empty_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT * FROM store_status_intervals ORDER BY 1, 2")).all() == rows
        if empty_engine.dialect.name == "sqlite":
            ddl = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'store_status_intervals'")).scalar()
            assert ddl.endswith("WITHOUT ROWID")


def test_daily_values_are_carried_into_the_packed_table_and_back(empty_engine):
    # 0011 replaces store_daily_uptime (a row per date and store) with store_daily_packed (a row
    # per date and shard of 1,024 store keys). Stores with keys 1, 2 (shard 0) and 1030 (shard 1):
    # 2023-01-01 holds 2 packed rows, 2023-01-02 one. Every value comes through, a null
    # final_from_us too, and the downgrade gives the rows back.
    from alembic import command

    from storemon_assets.db.history import read_daily
    from storemon_assets.db.migrate import _alembic_config

    with empty_engine.connect() as connection:
        command.upgrade(_alembic_config(connection), "0009")
        connection.commit()
    stores = [(1, "a"), (2, "b"), (1030, "c")]
    daily = [
        ("2023-01-01", "a", 10, 6, 4, None, 100, 200),
        ("2023-01-01", "b", 2**40, 2**39, 2**39, 2**50, 100, 201),
        ("2023-01-01", "c", 0, 0, 0, 7, 100, 202),
        ("2023-01-02", "a", 11, 11, 0, 300, 100, 203),
    ]
    with empty_engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO stores (store_key, store_id) VALUES (:k, :i)"), [{"k": k, "i": i} for k, i in stores]
        )
        conn.execute(
            sa.text("INSERT INTO store_daily_uptime VALUES (:d, :s, :b, :u, :w, :f, :a, :c)"),
            [dict(zip("dsbuwfac", row, strict=True)) for row in daily],
        )
    assert upgrade_schema(empty_engine) == ("0009", HEAD_REVISION)
    assert schema_drift(empty_engine) == []
    with empty_engine.connect() as conn:
        assert conn.execute(
            sa.text("SELECT CAST(local_date AS TEXT), shard, stores FROM store_daily_packed ORDER BY 1, 2")
        ).all() == [
            ("2023-01-01", 0, 2),
            ("2023-01-01", 1, 1),
            ("2023-01-02", 0, 1),
        ]
    keys = {i: k for k, i in stores}
    read = read_daily(empty_engine, dt.date(2023, 1, 1), dt.date(2023, 1, 2))
    assert [(str(r[0]), r[1], *r[2:]) for r in read.iter_rows()] == [
        (d, keys[s], *rest) for d, s, *rest in sorted(daily, key=lambda r: (r[0], keys[r[1]]))
    ]
    with empty_engine.connect() as connection:
        command.downgrade(_alembic_config(connection), "0009")
        connection.commit()
    with empty_engine.connect() as conn:
        back = conn.execute(sa.text("SELECT CAST(local_date AS TEXT), * FROM store_daily_uptime ORDER BY 1, 3")).all()
    assert [(r[0], *r[2:]) for r in back] == daily

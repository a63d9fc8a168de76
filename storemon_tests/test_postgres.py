"""PostgreSQL, against a real server (.ci/run starts one): the same report as SQLite."""

from __future__ import annotations

import sys

import dagster as dg
import pytest

from storemon_assets.core.generate import generate_feeds
from storemon_assets.core.uptime import report_csv
from storemon_assets.db.engine import MissingExtraError, create_db_engine, open_database
from storemon_assets.defs.raw import ingest_landing_files
from storemon_assets.defs.report import uptime_report
from storemon_assets.defs.resources import StoremonDatabase
from storemon_assets.service import COMBINED_REPORT_NAME, build_report, ingest_files
from storemon_assets.settings import sqlite_url
from storemon_tests.conftest import fresh_postgres_engine, postgres_url


def report_text(engine, paths) -> str:
    ingest_files(engine, paths)
    ingest_files(engine, paths)  # re-delivery changes nothing
    return report_csv(build_report(engine).report)


@pytest.mark.parametrize("stores", [40, 800])
def test_postgres_and_sqlite_give_the_same_report(tmp_path, stores):
    paths = list(generate_feeds(stores=stores, days=8, seed=stores).write(tmp_path / "feeds").values())
    sqlite_engine = open_database(sqlite_url(tmp_path / "s.db"))
    postgres_engine = fresh_postgres_engine()
    try:
        expected = report_text(sqlite_engine, paths)
        assert expected.count("\n") == stores + 1
        assert report_text(postgres_engine, paths) == expected
    finally:
        postgres_engine.dispose()


def test_assets_materialise_on_postgres(home, sample_files, instance):
    fresh_postgres_engine().dispose()
    resources = {**home.resources, "database": StoremonDatabase(url=postgres_url())}
    home.drop(*sample_files)
    result = dg.materialize([ingest_landing_files, uptime_report], resources=resources, instance=instance)
    assert result.success
    assert (home.reports.folder / COMBINED_REPORT_NAME).read_text().count("\n") == 101
    assert "postgresql" in result.asset_materializations_for_node("ingest_landing_files")[0].metadata["database"].value


@pytest.mark.parametrize("module", ["connectorx", "pyarrow", "psycopg2"])
def test_a_postgres_url_without_the_postgres_extra_says_what_to_install(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(
        MissingExtraError, match=rf"needs the postgres extra \([\w, ]*\b{module}\b[\w, ]* not installed\): pip install"
    ):
        create_db_engine("postgresql+psycopg2://user:secret@127.0.0.1:1/storemon")


def test_sqlite_needs_no_postgres_extra(monkeypatch, tmp_path):
    for module in ("connectorx", "pyarrow", "psycopg2"):
        monkeypatch.setitem(sys.modules, module, None)
    engine = open_database(sqlite_url(tmp_path / "s.db"))
    assert report_text(engine, list(generate_feeds(stores=5, days=2, seed=1).write(tmp_path / "feeds").values()))

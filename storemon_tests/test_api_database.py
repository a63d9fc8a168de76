"""The API's pages and a storemon database that is missing, deleted under it, or corrupt (issue 20
row 8): 503 with a one-line reason, and a missing SQLite file is never created by a reader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from storemon_assets.api import create_app
from storemon_assets.db.engine import open_database
from storemon_assets.service import build_report, ingest_files, publish_current_report
from storemon_assets.settings import SAMPLE_DATA_DIR, sqlite_url

MISSING = "the storemon database does not exist: nothing has been loaded yet"


def api_on(database: Path) -> TestClient:
    app = create_app(dagster_url="http://dagster.test", reports_dir=database.parent, database_url=sqlite_url(database))
    return TestClient(app)


def sqlite_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("storemon.db*"))


@pytest.fixture(scope="module")
def published_once(tmp_path_factory) -> Path:
    database = tmp_path_factory.mktemp("published") / "storemon.db"
    engine = open_database(sqlite_url(database))
    ingest_files(engine, sorted(SAMPLE_DATA_DIR.glob("*.csv")))
    publish_current_report(engine, build_report(engine), "report-1")
    engine.dispose()  # the last connection closed: the whole database is in the one file
    return database


@pytest.fixture
def published(tmp_path, published_once) -> Path:
    """A database of this test's own holding the sample files and their published report (a copy
    of one made once per module: loading and reporting cost ~0.15 s)."""
    database = tmp_path / "storemon.db"
    shutil.copyfile(published_once, database)
    return database


def assert_unavailable(response, reason: str) -> None:
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert detail.startswith(reason) and "\n" not in detail
    assert "/" not in detail.replace("storemon ingest", "")  # no server path


@pytest.mark.parametrize("path", ["/summary", "/stores", "/store?store_id=x", "/stores/x/timeline.svg"])
def test_a_database_not_there_yet_is_503_and_is_not_created(tmp_path, path):
    with api_on(tmp_path / "storemon.db") as client:
        assert_unavailable(client.get(path), MISSING)
    assert sqlite_files(tmp_path) == []


def test_a_database_deleted_under_the_running_api_is_503_not_an_empty_new_one(published):
    with api_on(published) as client:
        assert client.get("/summary").json()["stores"] == 100
        for name in ("storemon.db", "storemon.db-wal", "storemon.db-shm"):
            (published.parent / name).unlink(missing_ok=True)
        for _ in range(3):
            assert_unavailable(client.get("/summary"), MISSING)
        assert sqlite_files(published.parent) == []
        assert client.get("/openapi.json").status_code == 200  # the rest of the API goes on


def test_a_database_put_back_is_read_again(published, tmp_path):
    saved = tmp_path / "saved.db"
    with api_on(published) as client:
        assert client.get("/summary").status_code == 200
        published.rename(saved)
        assert_unavailable(client.get("/summary"), MISSING)
        saved.rename(published)
        assert client.get("/summary").json()["report_id"] == "report-1"


def test_a_corrupt_database_is_503_with_the_drivers_reason_in_one_line(tmp_path):
    database = tmp_path / "storemon.db"
    database.write_bytes(b"this is not a database\n" * 1000)
    with api_on(database) as client:
        assert_unavailable(client.get("/summary"), "the storemon database cannot be read: file is not a database")


@pytest.mark.parametrize("path", ["/summary", "/status", "/stores/x", "/get_report"])
def test_a_request_looks_at_the_database_file_once(published, path):
    """The token check and the route share one look at the file (a stat, maybe a re-open) per
    request; before, each protected request took two."""
    with api_on(published) as client:
        database = client.app.state.database
        looks = []
        real = database.engine
        database.engine = lambda: looks.append(1) or real()
        client.get(path)
        assert len(looks) == 1

"""The trigger + poll HTTP API against the real thing: `dagster dev` (webserver and daemon)
and `storemon api`, both started as subprocesses on 127.0.0.1. Only what lives in Dagster is
checked here (real runs, their CSVs and failure reasons, run lookup); the HTTP contract itself
is in test_api_contract.py, against a fake run client."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storemon_assets.core.instants import format_instant
from storemon_assets.db.engine import create_db_engine
from storemon_assets.db.queries import newest_poll_us
from storemon_assets.local_servers import dagster_dev, poll_report, prepared_home, storemon_api
from storemon_assets.settings import SAMPLE_DATA_DIR, sqlite_url
from storemon_tests.helpers import examples

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def expected_csv(tmp_path_factory) -> str:
    """What `storemon report` writes for the same sample and the same (default) T."""
    out = tmp_path_factory.mktemp("cli") / "report.csv"
    sample = SAMPLE_DATA_DIR
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "storemon"),
            "report",
            "--status",
            str(sample / "store_status.csv"),
            "--hours",
            str(sample / "menu_hours.csv"),
            "--timezones",
            str(sample / "timezones.csv"),
            "--special",
            str(sample / "special_hours.csv"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out.read_text()


@pytest.fixture(scope="module")
def api_home(tmp_path_factory) -> Path:
    return prepared_home(tmp_path_factory.mktemp("home"))


# Dagster hands a run's events 1,000 a page; 5 here, so that every look-up of a finished run
# (its failure reason, its report's warning, written at the end) reads several pages.
SMALL_EVENT_PAGES = {"DAGSTER_UI_EVENT_LOAD_CHUNK_SIZE": "5"}


@pytest.fixture(scope="module")
def api(api_home):
    with dagster_dev(api_home, SMALL_EVENT_PAGES) as dagster_url, storemon_api(api_home, dagster_url) as api_url:
        yield api_url


def test_trigger_then_poll_gives_running_then_the_csv_the_cli_writes(api, expected_csv):
    triggered = httpx.post(f"{api}/trigger_report", timeout=30)
    assert triggered.status_code == 200
    report_id = triggered.json()["report_id"]
    first = httpx.get(f"{api}/get_report", params={"report_id": report_id}, timeout=30)
    assert first.json() == {"status": "Running"}  # queued: the answer comes back at once
    done = poll_report(api, report_id)
    assert done.status_code == 200
    assert done.headers["x-report-status"] == "Complete"
    assert done.headers["content-type"].startswith("text/csv")
    assert f'filename="storemon-report-{report_id}.csv"' in done.headers["content-disposition"]
    assert done.text == expected_csv


def test_two_different_triggers_at_once_give_two_ids_and_two_correct_reports(api, api_home, expected_csv):
    # The current report, and an as-of report at the sample's newest poll (the same T): two runs
    # at once, each writing its own correct CSV.
    engine = create_db_engine(sqlite_url(api_home / "data" / "storemon.db"))
    newest = format_instant(newest_poll_us(engine))
    engine.dispose()
    bodies = [None, {"as_of": newest}]
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda b: httpx.post(f"{api}/trigger_report/", json=b, timeout=30), bodies))
    ids = [r.json()["report_id"] for r in responses]
    assert len(set(ids)) == 2
    for report_id in ids:
        assert poll_report(api, report_id).text == expected_csv


def test_100_identical_triggers_make_one_dagster_run_that_names_who_asked(api, api_home):
    """SPEC §10: while an identical report (same T, same data) is queued or running, a trigger
    answers its id. 100 triggers from 20 threads (about a second on 2 cores): one run in Dagster."""
    body = {"as_of": "2023-01-25T12:00:00Z"}  # a T no other test asks for
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: httpx.post(f"{api}/trigger_report", json=body, timeout=60), range(100)))
    assert {r.status_code for r in responses} == {200}
    ids = {r.json()["report_id"] for r in responses}
    assert len(ids) == 1
    instance = dg.DagsterInstance.from_config(str(api_home / "dagster_home"))
    try:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"storemon/as_of": "2023-01-25T12:00:00.000000Z"}))
        assert [run.run_id for run in runs] == list(ids)
        assert runs[0].tags["storemon/requested_by"] == "open:127.0.0.1"  # the open API: the client
        assert runs[0].tags["storemon/api"] == "trigger_report"
    finally:
        instance.dispose()
    assert poll_report(api, ids.pop()).headers["x-report-status"] == "Complete"


def test_an_as_of_report_is_kept_under_its_id_and_never_replaces_the_published_report(api, api_home, expected_csv):
    current = httpx.post(f"{api}/trigger_report", timeout=30).json()["report_id"]
    assert poll_report(api, current).text == expected_csv
    published = api_home / "data" / "reports" / "combined_report.csv"
    assert published.read_text() == expected_csv

    as_of = httpx.post(f"{api}/trigger_report", json={"as_of": "2023-01-24T00:00:00Z"}, timeout=30).json()
    older = poll_report(api, as_of["report_id"])
    assert older.status_code == 200 and older.headers["x-report-status"] == "Complete"
    assert older.text != expected_csv and older.text.splitlines()[0] == expected_csv.splitlines()[0]
    assert "x-report-warning" not in older.headers
    # T before every poll: an empty report, and the answer says why (read off the run's metadata).
    before = httpx.post(f"{api}/trigger_report", json={"as_of": "2022-01-24T00:00:00Z"}, timeout=30).json()
    empty = poll_report(api, before["report_id"])
    assert empty.text == expected_csv.splitlines()[0] + "\n"
    assert empty.headers["x-report-warning"].startswith("no data: no store was polled at or before T (2022-01-24")
    # The published report is still the current one (an hourly run may rewrite it, identically).
    assert published.read_text() == expected_csv
    instance = dg.DagsterInstance.from_config(str(api_home / "dagster_home"))
    try:
        run = instance.get_run_by_id(as_of["report_id"])
        assert run.job_name == "as_of_report_job"
        assert run.tags["storemon/as_of"] == "2023-01-24T00:00:00.000000Z"  # shown on the Runs page
        materialised = instance.get_records_for_run(
            as_of["report_id"], of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        assert materialised == []
        latest = instance.get_latest_materialization_event(dg.AssetKey("uptime_report"))
        assert latest.run_id != as_of["report_id"]
        assert instance.get_run_by_id(latest.run_id).job_name == "report_job"
    finally:
        instance.dispose()


def test_an_id_dagster_does_not_know_is_404(api):
    response = httpx.get(f"{api}/get_report/", params={"report_id": "00000000-0000-0000-0000-000000000000"}, timeout=30)
    assert response.status_code == 404
    assert "no report with id" in response.json()["detail"]


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(report_id=st.text(max_size=60) | st.uuids().map(str))
def test_get_report_never_answers_500(api, report_id):
    response = httpx.get(f"{api}/get_report", params={"report_id": report_id}, timeout=30)
    assert response.status_code in (200, 404, 429), response.text  # 429: look-ups of unknown ids are rate-limited


def test_failed_run_surfaces_its_reason_and_a_stopped_dagster_gives_503(tmp_path):
    home = tmp_path
    broken = home / "broken.db"
    broken.write_bytes(b"this is not an SQLite database" * 100)
    with dagster_dev(home, extra_env={"STOREMON_DATABASE_URL": sqlite_url(broken), **SMALL_EVENT_PAGES}) as dagster_url:
        with storemon_api(home, dagster_url) as api_url:
            report_id = httpx.post(f"{api_url}/trigger_report", timeout=30).json()["report_id"]
            failed = poll_report(api_url, report_id)
            assert failed.json()["status"] == "Failed"
            assert "file is not a database" in failed.json()["error"]
    # Dagster is gone (the whole process group was stopped); a new API in front of its old address:
    with storemon_api(home, dagster_url) as api_url:
        for response in (
            httpx.post(f"{api_url}/trigger_report", timeout=30),
            httpx.get(f"{api_url}/get_report", params={"report_id": report_id}, timeout=30),
        ):
            assert response.status_code == 503
            assert "is unreachable" in response.json()["detail"]

"""An as-of report never replaces the published one (SPEC §6): `combined_report.csv` and the
latest materialisation of `uptime_report` stay the current report; a report for any other T is a
run of `as_of_report_job`, kept only as `<run id>.csv`."""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from storemon_assets.core import quality
from storemon_assets.core.instants import as_of_instant, parse_as_of
from storemon_assets.core.uptime import report_csv
from storemon_assets.defs.raw import ingest_landing_files
from storemon_assets.defs.report import as_of_report_job, uptime_report
from storemon_assets.names import AS_OF_TAG
from storemon_assets.service import COMBINED_REPORT_NAME, build_report

UPTIME_REPORT = dg.AssetKey("uptime_report")
AS_OF = "2023-01-24T00:00:00Z"


def as_of_run(home, instance, as_of: str = AS_OF, **kwargs) -> dg.ExecuteInProcessResult:
    return as_of_report_job.execute_in_process(
        run_config=dg.RunConfig(ops={"as_of_report": {"config": {"as_of": as_of}}}),
        resources=home.resources,
        instance=instance,
        **kwargs,
    )


def test_an_as_of_run_keeps_its_report_under_its_id_and_leaves_the_published_report_alone(home, instance, sample_files):
    home.drop(*sample_files)
    published = dg.materialize([ingest_landing_files, uptime_report], resources=home.resources, instance=instance)
    combined = home.reports.folder / COMBINED_REPORT_NAME
    current_text = combined.read_text()

    result = as_of_run(home, instance)

    assert result.success
    # The as-of CSV is the report for T = 2023-01-24 00:00 UTC, and it differs from the current one.
    expected = report_csv(build_report(home.database.engine(), parse_as_of(AS_OF)).report)
    assert home.reports.report_path(result.run_id).read_text() == expected != current_text
    # Published report and latest materialisation: still the current report of the first run.
    assert combined.read_text() == current_text
    latest = instance.get_latest_materialization_event(UPTIME_REPORT)
    assert latest.run_id == published.run_id
    assert result.get_asset_materialization_events() == []
    # The run says which T it is for: a tag (the Runs page) and its output metadata.
    assert instance.get_run_by_id(result.run_id).tags[AS_OF_TAG] == "2023-01-24T00:00:00.000000Z"
    output = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"][0]
    assert output.event_specific_data.metadata["as_of"].value == "2023-01-24T00:00:00.000000Z"
    assert output.event_specific_data.metadata["stores"].value == 100
    assert "stale_data_warning" not in output.event_specific_data.metadata  # T is before the newest poll


def test_an_as_of_report_now_on_old_data_warns_that_its_statuses_are_guesses(home, instance, sample_files):
    """Issue 16 item 10 for as-of reports too (a new-user trial found only the current report
    warned): the sample's newest poll is 2023-01-25 18:12:56 UTC, years before `now`."""
    home.drop(*sample_files)
    dg.materialize([ingest_landing_files], resources=home.resources, instance=instance)
    result = as_of_run(home, instance, "now")
    assert result.success
    output = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"][0]
    warning = output.event_specific_data.metadata["stale_data_warning"].value
    assert (
        warning.startswith("stale data: T (")
        and "days after the newest poll loaded (2023-01-25T18:12:56.113981Z)" in warning
    )
    logged = [e.message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert warning in logged


def test_the_current_report_follows_storemon_as_of_and_an_old_one_only_warns(home, instance, sample_files, monkeypatch):
    """STOREMON_AS_OF fixes T for the *current* report (a frozen demo, or `now` for live use)."""
    monkeypatch.setenv("STOREMON_AS_OF", AS_OF)
    home.drop(*sample_files)
    result = dg.materialize([ingest_landing_files, uptime_report], resources=home.resources, instance=instance)
    metadata = result.asset_materializations_for_node("uptime_report")[0].metadata
    assert metadata["as_of"].value == "2023-01-24T00:00:00.000000Z"
    assert (home.reports.folder / COMBINED_REPORT_NAME).exists()  # it is the published report


@pytest.mark.parametrize(
    ("as_of", "message"), [("yesterday-ish", "is not a timestamp"), ("  ", "an as-of report needs its T")]
)
def test_an_as_of_run_with_a_bad_t_fails_saying_why(home, instance, sample_files, as_of, message):
    home.drop(*sample_files)
    dg.materialize([ingest_landing_files], resources=home.resources, instance=instance)
    result = as_of_run(home, instance, as_of, raise_on_error=False)
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert message in failure.event_specific_data.error.message
    assert not home.reports.report_path(result.run_id).exists()


def test_an_as_of_report_that_fails_a_blocking_check_is_not_written(home, instance, sample_files, monkeypatch):
    real = quality.report_findings

    def with_a_failure(*args):
        return real(*args) | {"no_negative_values": quality.Finding(False, "crafted failure")}

    monkeypatch.setattr(quality, "report_findings", with_a_failure)
    home.drop(*sample_files)
    dg.materialize([ingest_landing_files], resources=home.resources, instance=instance)
    result = as_of_run(home, instance, raise_on_error=False)
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "blocking checks failed: no_negative_values: crafted failure" in failure.event_specific_data.error.message
    assert not home.reports.report_path(result.run_id).exists()


def test_as_of_instant_is_iso_utc_and_resolves_now():
    assert as_of_instant(" 2023-01-24 01:00:00+01:00 ") == "2023-01-24T00:00:00.000000Z"
    assert as_of_instant("now").endswith("Z")
    with pytest.raises(ValueError, match="needs its T"):
        as_of_instant("")

"""Asset checks, each shown passing and failing on crafted data."""

from __future__ import annotations

import dagster as dg
import polars as pl

from storemon_assets.core import quality
from storemon_assets.defs.raw import ingest_landing_files, no_unreadable_files, raw_feed_checks
from storemon_assets.defs.report import uptime_report
from storemon_assets.service import COMBINED_REPORT_NAME
from storemon_tests.helpers import example_report, write_csv


def load(home, instance, files: dict[str, str]):
    for name, text in files.items():
        write_csv(home.landing.folder, name, text)
    return dg.materialize([ingest_landing_files], resources=home.resources, instance=instance, raise_on_error=False)


def run_checks(home, instance, *names):
    """Run the raw checks named `check@asset` (every one if none is named): only those."""
    keys = [dg.AssetCheckKey(dg.AssetKey(n.split("@")[1]), n.split("@")[0]) for n in names]
    result = dg.materialize(
        [ingest_landing_files, raw_feed_checks, no_unreadable_files],
        resources=home.resources,
        instance=instance,
        selection=dg.AssetSelection.checks(*keys)
        if keys
        else dg.AssetSelection.checks(raw_feed_checks, no_unreadable_files),
        raise_on_error=False,
    )
    return {e.check_name + "@" + e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


POLLS = "store_id,status,timestamp_utc\n" + "".join(f"{n},active,2023-01-22 12:{n:02d}:00 UTC\n" for n in range(1, 11))
HOURS = "store_id,day,start_time_local,end_time_local\n" + "".join(f"{n},0,09:00,17:00\n" for n in range(1, 11))
ZONES = "store_id,timezone_str\n" + "".join(f"{n},America/Denver\n" for n in range(1, 11))


def test_raw_checks_pass_on_clean_feeds(home, instance):
    load(home, instance, {"p.csv": POLLS, "h.csv": HOURS, "t.csv": ZONES})
    checks = [
        "rejected_rows_share@raw_store_status",
        "rejected_rows_share@raw_store_timezones",
        "timezones_are_known@raw_store_timezones",
        "polled_stores_have_timezones@raw_store_timezones",
        "polled_stores_have_business_hours@raw_business_hours",
        "no_unreadable_files@landing_folder",
    ]
    evaluations = run_checks(home, instance, *checks)
    assert sorted(evaluations) == sorted(checks)  # those, and only those, though one step runs the first five
    assert all(e.passed for e in evaluations.values()), {k: e.description for k, e in evaluations.items()}


def test_raw_checks_warn_with_what_to_fix(home, instance):
    # 2 bad polls of 12 (17%), a store with an unknown zone, store 10 without hours or zone.
    bad_polls = POLLS + "11,asleep,2023-01-22 12:00:00 UTC\n12,active,not a time\n"
    zones = "store_id,timezone_str\n" + "".join(f"{n},America/Denver\n" for n in range(1, 9)) + "9,Mars/Base\n"
    hours = "store_id,day,start_time_local,end_time_local\n" + "".join(f"{n},0,09:00,17:00\n" for n in range(1, 10))
    load(home, instance, {"p.csv": bad_polls, "h.csv": hours, "t.csv": zones, "junk.csv": "x,y\n"})
    evaluations = run_checks(home, instance)  # every raw check
    assert len(evaluations) == 8  # a share per feed, 3 more of the feeds, and the landing folder's
    share = evaluations["rejected_rows_share@raw_store_status"]
    assert not share.passed and share.severity == dg.AssetCheckSeverity.WARN
    assert share.description.startswith("2 of 12 polls rows rejected (16.67%)")
    # The figures beside it: 12 rows read, 2 rejected, 2 / 12 = 0.1667 of them.
    assert (share.metadata["rows_read"].value, share.metadata["rows_rejected"].value) == (12, 2)
    assert round(share.metadata["share"].value, 4) == 0.1667
    assert "unknown status" in share.metadata["reasons"].value
    assert isinstance(share.metadata["reasons"], dg.MarkdownMetadataValue)  # a table in the UI
    unknown = evaluations["timezones_are_known@raw_store_timezones"]
    assert not unknown.passed and "1 stores use America/Chicago" in unknown.description
    no_zone = evaluations["polled_stores_have_timezones@raw_store_timezones"]
    assert not no_zone.passed and no_zone.metadata["stores_without_timezone"].value == 2  # stores 9 and 10
    no_hours = evaluations["polled_stores_have_business_hours@raw_business_hours"]
    assert not no_hours.passed and no_hours.metadata["examples"].value == "10"
    failed_files = evaluations["no_unreadable_files@landing_folder"]
    assert not failed_files.passed and "junk.csv" in failed_files.metadata["files"].value


# --- report checks: the rules on crafted reports -------------------------------------------


def good_report():
    return example_report(
        [("a", "2023-01-16 12:00", "active"), ("b", "2023-01-16 12:30", "inactive")], [], {}, as_of="2023-01-16 13:00"
    )


def test_every_polled_store_reported():
    report = good_report().report
    assert quality.every_polled_store_reported(report, pl.Series(["a", "b"])).passed
    missing = quality.every_polled_store_reported(report.filter(pl.col("store_id") == "a"), pl.Series(["a", "b"]))
    assert not missing.passed and missing.details["missing"] == ["b"]
    doubled = quality.every_polled_store_reported(pl.concat([report, report.head(1)]), pl.Series(["a", "b"]))
    assert not doubled.passed and "1 duplicated" in doubled.summary


def test_no_negative_values():
    report = good_report().report
    assert quality.no_negative_values(report).passed
    broken = report.with_columns(
        pl.when(pl.col("store_id") == "b").then(-1.0).otherwise(pl.col("uptime_last_day")).alias("uptime_last_day")
    )
    assert not quality.no_negative_values(broken).passed


def test_uptime_plus_downtime_is_business_time():
    uptime = good_report()
    assert quality.uptime_plus_downtime_is_business_time(uptime).passed
    broken = type(uptime)(uptime.as_of_us, uptime.report, uptime.exact.with_columns(pl.col("up_day_half_us") + 1))
    finding = quality.uptime_plus_downtime_is_business_time(broken)
    assert not finding.passed and finding.details["stores"] == ["a", "b"]


def test_as_of_not_older_than_newest_poll():
    assert quality.as_of_not_older_than_newest_poll(10, 10).passed
    behind = quality.as_of_not_older_than_newest_poll(0, 7_200_000_000)
    assert not behind.passed and behind.summary.startswith("T is 2.00 h older than the newest poll")


# --- report checks inside the asset ---------------------------------------------------------


def test_report_checks_pass_and_an_old_as_of_only_warns(home, instance, sample_files, monkeypatch):
    monkeypatch.setenv("STOREMON_AS_OF", "2023-01-24T00:00:00Z")  # a deployment that fixes T in the past
    home.drop(*sample_files)
    result = dg.materialize([ingest_landing_files, uptime_report], resources=home.resources, instance=instance)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert len(evaluations) == 5  # the report's four, and the ingest's own for the hours it loaded
    assert evaluations["no_store_lost_weekdays"].passed
    assert all(
        evaluations[name].passed
        for name in ("every_polled_store_reported", "no_negative_values", "uptime_plus_downtime_is_business_time")
    )
    warning = evaluations["as_of_not_older_than_newest_poll"]
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    assert (home.reports.folder / COMBINED_REPORT_NAME).exists()  # a warning still publishes


def test_failed_blocking_check_publishes_nothing(home, instance, sample_files, monkeypatch):
    # Wrap the real findings and break one, to exercise the asset's refusal to publish.
    real = quality.report_findings

    def with_a_failure(*args):
        findings = real(*args)
        findings["no_negative_values"] = quality.Finding(False, "crafted failure")
        return findings

    monkeypatch.setattr(quality, "report_findings", with_a_failure)
    home.drop(*sample_files)
    result = dg.materialize(
        [ingest_landing_files, uptime_report], resources=home.resources, instance=instance, raise_on_error=False
    )
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.check_name for e in failed] == ["no_negative_values"]
    assert not (home.reports.folder / COMBINED_REPORT_NAME).exists()
    assert result.asset_materializations_for_node("uptime_report") == []


def test_the_bundled_sample_passes_every_raw_check(home, instance, sample_files):
    """A new user's first run shows no failed check: every sample store has hours and a zone,
    and the two rows planted to show rejections stay under the 1% threshold."""
    home.drop(*sample_files)
    evaluations = run_checks(home, instance)
    assert len(evaluations) == len(quality.RAW_FEED_CHECKS) + 1  # and the landing folder's
    assert all(e.passed for e in evaluations.values()), {k: e.description for k, e in evaluations.items()}

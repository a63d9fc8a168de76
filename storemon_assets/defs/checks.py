"""Asset checks on the raw feeds and the landing folder (warnings: the report stays right,
thanks to the SPEC's defaults, but a user should fix the input). The report's own checks run
inside the report asset, which publishes nothing when a blocking one fails."""

import dagster as dg

from storemon_assets.core import quality
from storemon_assets.core.feeds import DEFAULT_TIMEZONE
from storemon_assets.core.summaries import markdown_list
from storemon_assets.core.tables import (
    BUSINESS_HOURS,
    INGESTED_FILES,
    REJECTED_ROW_COUNTS,
    REJECTED_ROWS,
    STORE_TIMEZONES,
)
from storemon_assets.db.queries import polled_store_ids, read_table
from storemon_assets.defs.assets.raw import LANDING_FOLDER, RAW_ASSETS, RAW_BUSINESS_HOURS, RAW_STORE_TIMEZONES
from storemon_assets.defs.resources import LandingFolder, StoremonDatabase
from storemon_assets.defs.ui_metadata import check_result


def _rejected_share_check(kind: str) -> dg.AssetChecksDefinition:
    asset_key = RAW_ASSETS[kind][0]

    @dg.asset_check(
        asset=asset_key,
        name="rejected_rows_share",
        description=f"At most {quality.MAX_REJECTED_SHARE:.0%} of the {kind} rows loaded were rejected.",
    )
    def check(database: StoremonDatabase) -> dg.AssetCheckResult:
        engine = database.engine()
        finding = quality.rejected_share(
            read_table(engine, INGESTED_FILES),
            read_table(engine, REJECTED_ROWS),
            kind,
            read_table(engine, REJECTED_ROW_COUNTS),
        )
        return check_result(
            finding,
            rows_read=finding.details["rows_read"],
            rows_rejected=finding.details["rows_rejected"],
            share=float(finding.details["share"]),
            reasons=finding.details["reasons"],
        )

    return check


REJECTED_SHARE_CHECKS = {kind: _rejected_share_check(kind) for kind in RAW_ASSETS}  # one per feed


@dg.asset_check(asset=RAW_STORE_TIMEZONES, description="Every timezone name is a known IANA zone.")
def timezones_are_known(database: StoremonDatabase) -> dg.AssetCheckResult:
    finding = quality.unknown_timezones(read_table(database.engine(), REJECTED_ROWS))
    return check_result(finding, rows=finding.details["rows"])


def _polled_stores_missing(database: StoremonDatabase, spec, what: str, default: str, count_name: str):
    engine = database.engine()
    finding = quality.polled_stores_missing(
        polled_store_ids(engine, None), read_table(engine, spec).get_column("store_id"), what, default
    )
    stores = finding.details["stores"]
    return check_result(finding, **{count_name: stores.len()}, examples=", ".join(stores.head(10).to_list()))


@dg.asset_check(asset=RAW_STORE_TIMEZONES, description=f"Every polled store has a timezone (else {DEFAULT_TIMEZONE}).")
def polled_stores_have_timezones(database: StoremonDatabase) -> dg.AssetCheckResult:
    return _polled_stores_missing(database, STORE_TIMEZONES, "timezone", DEFAULT_TIMEZONE, "stores_without_timezone")


@dg.asset_check(asset=RAW_BUSINESS_HOURS, description="Every polled store has business hours (else open 24x7).")
def polled_stores_have_business_hours(database: StoremonDatabase) -> dg.AssetCheckResult:
    return _polled_stores_missing(database, BUSINESS_HOURS, "business hours", "open 24x7", "stores_without_hours")


def failed_files_finding(landing: LandingFolder) -> tuple[quality.Finding, dict]:
    """The verdict (LandingFolderRules.failed_finding) and each waiting file's error, for the UI."""
    finding = landing.failed_finding()
    return finding, {"files": markdown_list(f"`{n}`: {e}" for n, e in finding.details["errors"].items())}


@dg.asset_check(asset=LANDING_FOLDER, description="No file in the landing folder failed ingestion.")
def no_unreadable_files(landing: LandingFolder) -> dg.AssetCheckResult:
    finding, metadata = failed_files_finding(landing)
    return check_result(finding, **metadata)


raw_checks = [
    *REJECTED_SHARE_CHECKS.values(),
    timezones_are_known,
    polled_stores_have_timezones,
    polled_stores_have_business_hours,
    no_unreadable_files,
]

"""Data-quality rules for the raw feeds and the report, as plain functions.

Each rule returns a `Finding`: whether it passed, and what a user needs to fix it. The Dagster
checks (defs/raw.py, defs/report.py) only wrap these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from storemon_assets.core.feeds import DEFAULT_TIMEZONE, FEED_KINDS, HOURS, TIMEZONES
from storemon_assets.core.uptime import WINDOWS, UptimeReport

MAX_REJECTED_SHARE = 0.01  # more than 1% of a feed's rows rejected deserves a look


@dataclass(frozen=True)
class Finding:
    passed: bool
    summary: str
    details: dict = field(default_factory=dict)


def rejected_share(ledger: pl.DataFrame, rejected: pl.DataFrame, kind: str, counts: pl.DataFrame) -> Finding:
    """Share of a feed's rows that were rejected, with the commonest reasons: counted over every
    rejected row (`counts`, per file and reason), an example from those kept with their text."""
    files = ledger.filter(pl.col("kind") == kind)
    read = int(files.get_column("rows_read").sum() or 0)
    bad = int(files.get_column("rows_rejected").sum() or 0)
    share = bad / read if read else 0.0
    examples = (
        rejected.filter(pl.col("kind") == kind)
        .sort("file_name", "line_number")
        .group_by("reason")
        .agg(pl.col("file_name").first().alias("example_file"), pl.col("line_number").first().alias("example_line"))
    )
    reasons = (
        counts.filter(pl.col("kind") == kind)
        .group_by("reason")
        .agg(pl.col("row_count").sum().alias("rows"))
        .join(examples, on="reason", how="left")
        .sort("rows", descending=True)
    )
    passed = share <= MAX_REJECTED_SHARE
    summary = f"{bad} of {read} {kind} rows rejected ({share:.2%})" + (
        "" if passed else f"; above {MAX_REJECTED_SHARE:.0%}: fix the rows listed in table rejected_rows"
    )
    return Finding(passed, summary, {"rows_read": read, "rows_rejected": bad, "share": share, "reasons": reasons})


def unknown_timezones(rejected: pl.DataFrame) -> Finding:
    """Timezone rows with names that are not IANA zones; their stores fall back to Chicago."""
    unknown = rejected.filter((pl.col("kind") == TIMEZONES) & pl.col("reason").str.starts_with("unknown timezone"))
    stores = unknown.get_column("store_id").drop_nulls().unique().sort()
    summary = (
        "every timezone name is a known IANA zone"
        if unknown.is_empty()
        else f"{unknown.height} timezone rows name unknown zones; {stores.len()} stores use {DEFAULT_TIMEZONE} instead. "
        "Correct the names (e.g. America/New_York) and deliver the timezones file again"
    )
    return Finding(unknown.is_empty(), summary, {"rows": unknown.select("file_name", "line_number", "raw_text")})


def polled_stores_missing(polled: pl.Series, present: pl.Series, what: str, default: str, count_name: str) -> Finding:
    """Polled stores absent from a feed, which therefore get that feed's default: how many
    (`count_name`) and the first ten."""
    stores = polled.unique()
    missing = stores.filter(~stores.is_in(present.implode())).sort()
    summary = (
        f"every polled store has {what}"
        if missing.is_empty()
        else f"{missing.len()} of {stores.len()} polled stores have no {what} and use the default ({default})"
    )
    return Finding(missing.is_empty(), summary, {count_name: missing.len(), "examples": ", ".join(missing.head(10))})


# The raw feeds' checks, all warnings (the SPEC's defaults keep the report right): (feed, check
# name) -> description. defs/raw.py runs them in one step.
RAW_FEED_CHECKS = {
    **{
        (kind, "rejected_rows_share"): f"At most {MAX_REJECTED_SHARE:.0%} of the {kind} rows loaded were rejected."
        for kind in FEED_KINDS
    },
    (TIMEZONES, "timezones_are_known"): "Every timezone name is a known IANA zone.",
    (TIMEZONES, "polled_stores_have_timezones"): f"Every polled store has a timezone (else {DEFAULT_TIMEZONE}).",
    (HOURS, "polled_stores_have_business_hours"): "Every polled store has business hours (else open 24x7).",
}


def raw_feed_findings(
    ledger: pl.DataFrame,
    rejected: pl.DataFrame,
    rejected_counts: pl.DataFrame,
    polled: pl.Series,
    zoned: pl.Series,
    with_hours: pl.Series,
) -> dict[tuple[str, str], Finding]:
    """What each of RAW_FEED_CHECKS finds; each finding's details are the figures to fix it by."""
    return {
        **{
            (kind, "rejected_rows_share"): rejected_share(ledger, rejected, kind, rejected_counts)
            for kind in FEED_KINDS
        },
        (TIMEZONES, "timezones_are_known"): unknown_timezones(rejected),
        (TIMEZONES, "polled_stores_have_timezones"): polled_stores_missing(
            polled, zoned, "timezone", DEFAULT_TIMEZONE, "stores_without_timezone"
        ),
        (HOURS, "polled_stores_have_business_hours"): polled_stores_missing(
            polled, with_hours, "business hours", "open 24x7", "stores_without_hours"
        ),
    }


# --- the report -------------------------------------------------------------------------------


def every_polled_store_reported(report: pl.DataFrame, polled_store_ids: pl.Series) -> Finding:
    expected = set(polled_store_ids.to_list())
    got = report.get_column("store_id").to_list()
    missing, extra = sorted(expected - set(got)), sorted(set(got) - expected)
    duplicated = len(got) - len(set(got))
    passed = not missing and not extra and not duplicated
    summary = (
        f"all {len(expected)} polled stores reported once"
        if passed
        else f"{len(missing)} polled stores missing, {len(extra)} unexpected, {duplicated} duplicated"
    )
    return Finding(passed, summary, {"missing": missing[:20], "unexpected": extra[:20]})


def no_negative_values(report: pl.DataFrame) -> Finding:
    values = pl.exclude("store_id")
    negative = report.filter(pl.any_horizontal(values < 0) | pl.any_horizontal(values.is_null()))
    passed = negative.is_empty()
    return Finding(
        passed,
        "no negative or missing values" if passed else f"{negative.height} stores with negative or missing values",
        {"stores": negative.head(20)},
    )


def uptime_plus_downtime_is_business_time(uptime: UptimeReport) -> Finding:
    """Exact invariant of SPEC §5.3 for stores with observations (sums in half-microseconds)."""
    exact = uptime.exact
    if exact.is_empty():
        return Finding(True, "no stores to check")
    observed = exact.filter(pl.col("has_observations"))
    broken = observed.filter(
        pl.any_horizontal(
            pl.col(f"up_{w.name}_half_us") + pl.col(f"down_{w.name}_half_us") != pl.col(f"business_{w.name}_half_us")
            for w in WINDOWS
        )
    )
    passed = broken.is_empty()
    summary = (
        f"holds exactly for all {observed.height} stores with observations"
        if passed
        else f"violated for {broken.height} stores: this is a defect in storemon, please report it"
    )
    return Finding(passed, summary, {"stores": broken.get_column("store_id").head(20).to_list()})


def as_of_not_older_than_newest_poll(as_of_us: int | None, newest_poll_us: int | None) -> Finding:
    if as_of_us is None or newest_poll_us is None or as_of_us >= newest_poll_us:
        return Finding(True, "the report includes the newest poll")
    behind_h = (newest_poll_us - as_of_us) / 3_600_000_000
    return Finding(
        False,
        f"T is {behind_h:.2f} h older than the newest poll; polls after T are ignored. "
        "Clear STOREMON_AS_OF to report as of the newest poll",
    )


# The report's checks (SPEC §6): name -> (blocking, description). A blocking failure keeps the
# report unpublished (the current report) or unwritten (an as-of report); the others warn.
REPORT_CHECKS = {
    "every_polled_store_reported": (True, "Every store with a poll at or before T has exactly one row."),
    "no_negative_values": (True, "No value is negative or missing."),
    "uptime_plus_downtime_is_business_time": (
        True,
        "For every store with observations, uptime + downtime equals its business time in each window, exactly.",
    ),
    "as_of_not_older_than_newest_poll": (False, "T is not older than the newest poll loaded."),
}


def report_findings(
    report: pl.DataFrame, uptime: UptimeReport, polled: pl.Series, newest_us: int | None
) -> dict[str, Finding]:
    """What each of REPORT_CHECKS finds in a report (`polled`: the stores polled at or before T)."""
    return {
        "every_polled_store_reported": every_polled_store_reported(report, polled),
        "no_negative_values": no_negative_values(report),
        "uptime_plus_downtime_is_business_time": uptime_plus_downtime_is_business_time(uptime),
        "as_of_not_older_than_newest_poll": as_of_not_older_than_newest_poll(uptime.as_of_us, newest_us),
    }


def blocking_failures(findings: dict[str, Finding]) -> str | None:
    """'name: summary; ...' of the blocking checks that failed, or None: the report may be written."""
    failed = [f"{name}: {f.summary}" for name, f in findings.items() if REPORT_CHECKS[name][0] and not f.passed]
    return "; ".join(failed) or None

"""The uptime report: the *current* report (SPEC §6), published as `combined_report.csv` plus a
copy per run under the run id, and the status intervals behind it (`store_status_intervals`):
one step computes both, so the timeline and the report always come from the same observations
and are published together.

T is the latest poll, or STOREMON_AS_OF when a deployment fixes it (`now` for live operation, a
past instant to freeze a demo). The asset takes no T of its own: a report for any other T is an
as-of report (defs/as_of_report.py), which never replaces `combined_report.csv` or the
timelines, nor becomes the latest materialisation of these assets.
"""

import time

import dagster as dg
import polars as pl

from storemon_assets import settings
from storemon_assets.core import quality
from storemon_assets.core.instants import parse_as_of
from storemon_assets.core.summaries import weekly_uptime_distribution
from storemon_assets.core.tables import STORE_STATUS_INTERVALS, UPTIME_REPORT
from storemon_assets.db.queries import newest_poll_us, polled_store_ids
from storemon_assets.defs.assets.raw import RAW_BUSINESS_HOURS, RAW_STORE_STATUS, RAW_STORE_TIMEZONES
from storemon_assets.defs.resources import ReportsFolder, StoremonDatabase
from storemon_assets.defs.ui_metadata import markdown_table, table_schema
from storemon_assets.service import ReportResult, build_report, publish_current_report, write_report_files

REPORT_SCHEMA = table_schema(UPTIME_REPORT)
RAW_FEEDS = [RAW_STORE_STATUS, RAW_BUSINESS_HOURS, RAW_STORE_TIMEZONES]


def report_metadata(result: ReportResult, paths: list, compute_seconds: float) -> dict:
    """What the asset's page shows. Every number is plotted across materialisations (Overview,
    Metadata, Plots): the fleet's weekly uptime % weighted by business time, the stores whose
    weekly uptime is under 95 % and under 80 %, polls in the week window, compute time."""
    fleet = result.fleet_week
    return {
        "as_of": result.as_of_iso or "(no polls loaded)",
        "stores": result.store_count,
        **({"fleet_uptime_pct_week": fleet.uptime_pct} if fleet.uptime_pct is not None else {}),
        **{f"stores_under_{pct}_pct_week": n for pct, n in fleet.stores_under_pct.items()},
        "stores_without_observations": result.stores_without_observations,
        # What the report read: the week before T and a margin, then older polls only for carry-ins.
        "polls_read": result.reads.window_polls + result.reads.older_polls,
        "polls_in_week": result.reads.week_polls,
        "rejected_rows": sum(result.rejected_rows_by_kind.values()),
        **{f"rejected_{kind}_rows": n for kind, n in result.rejected_rows_by_kind.items()},
        "compute_seconds": round(compute_seconds, 3),
        "dagster/row_count": result.store_count,
        "dagster/column_schema": REPORT_SCHEMA,
        "preview": markdown_table(result.report),
        "weekly_uptime_distribution": markdown_table(weekly_uptime_distribution(result.report)),
        "combined_report": dg.MetadataValue.path(str(paths[0])),
        "run_report": dg.MetadataValue.path(str(paths[-1])),
        "timelines_page": dg.MetadataValue.url(settings.api_url() + "/"),
    }


def intervals_metadata(result: ReportResult) -> dict:
    intervals = result.uptime.intervals
    return {
        "as_of": result.as_of_iso or "(no polls loaded)",
        "dagster/row_count": intervals.height,
        "stores": intervals.get_column("store_id").n_unique(),
        **{f"{status}_intervals": n for status, n in result.intervals_by_status.items()},
        "preview": markdown_table(intervals.head(10)),
        "table": STORE_STATUS_INTERVALS.name,
        "timelines_page": dg.MetadataValue.url(settings.api_url() + "/"),
    }


ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
REPORT_CHECKS = {
    # name: (blocking, description)
    "every_polled_store_reported": (True, "Every store with a poll at or before T has exactly one row."),
    "no_negative_values": (True, "No value is negative or missing."),
    "uptime_plus_downtime_is_business_time": (
        True,
        "For every store with observations, uptime + downtime equals its business time in each window, exactly.",
    ),
    "as_of_not_older_than_newest_poll": (False, "T is not older than the newest poll loaded."),
}


def report_findings(result: ReportResult, polled: pl.Series, newest_us: int | None) -> dict[str, quality.Finding]:
    return {
        "every_polled_store_reported": quality.every_polled_store_reported(result.report, polled),
        "no_negative_values": quality.no_negative_values(result.report),
        "uptime_plus_downtime_is_business_time": quality.uptime_plus_downtime_is_business_time(result.uptime),
        "as_of_not_older_than_newest_poll": quality.as_of_not_older_than_newest_poll(result.uptime.as_of_us, newest_us),
    }


def checked_report(engine, as_of_us: int | None) -> tuple[ReportResult, dict[str, quality.Finding], float]:
    """The report as of T (None: the latest poll), what its checks found, and the seconds the
    computation took: shared by the current report and the as-of job."""
    started = time.perf_counter()
    result = build_report(engine, as_of_us)
    compute_seconds = time.perf_counter() - started
    findings = report_findings(result, polled_store_ids(engine, result.uptime.as_of_us), newest_poll_us(engine))
    return result, findings, compute_seconds


def instant_or_failure(text: str) -> int | None:
    """T from its text (parse_as_of), or the run fails saying what is wrong with it."""
    try:
        return parse_as_of(text)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc


def blocking_failures(findings: dict[str, quality.Finding]) -> str | None:
    """'name: summary; ...' of the blocking checks that failed, or None: the report may be written."""
    failed = [f"{name}: {f.summary}" for name, f in findings.items() if REPORT_CHECKS[name][0] and not f.passed]
    return "; ".join(failed) or None


def check_results(findings: dict[str, quality.Finding]) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=name,
            passed=finding.passed,
            severity=ERROR if REPORT_CHECKS[name][0] else WARN,
            description=finding.summary,
            metadata={"summary": finding.summary}
            | {k: str(v) for k, v in finding.details.items() if isinstance(v, list) and v},
        )
        for name, finding in findings.items()
    ]


@dg.multi_asset(
    name=UPTIME_REPORT.name,
    specs=[
        dg.AssetSpec(
            UPTIME_REPORT.name,
            deps=RAW_FEEDS,
            group_name="report",
            kinds={"polars", "csv"},
            skippable=True,
            description="The current report: uptime and downtime of every polled store during its business "
            "hours over the last hour, day and week before T, the latest poll or STOREMON_AS_OF "
            "(docs/uptime-logic.md). Reports for another T are runs of as_of_report_job and never replace "
            "this one. Derives each store's schedule with the same code as "
            "the store partitions, so it never reads a partition that lags behind the raw feeds. Nothing is "
            "published when a blocking check fails.",
        ),
        dg.AssetSpec(
            STORE_STATUS_INTERVALS.name,
            deps=RAW_FEEDS,
            group_name="report",
            kinds={"polars", "sql"},
            skippable=True,
            description="When each store of the current report was up or down in the week before T: its business "
            "time cut at every status change (docs/uptime-logic.md §10). Computed in the same step as "
            "uptime_report from the same observations; summed per window it gives the report's numbers. "
            "Replaced, in one transaction, whenever the current report is published (not by as-of reports); "
            "the API's /stores pages read it.",
            metadata={
                "dagster/column_schema": table_schema(STORE_STATUS_INTERVALS),
                "table": STORE_STATUS_INTERVALS.name,
            },
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset=UPTIME_REPORT.name, blocking=blocking, description=description)
        for name, (blocking, description) in REPORT_CHECKS.items()
    ],
    can_subset=False,
)
def uptime_report(context: dg.AssetExecutionContext, database: StoremonDatabase, reports: ReportsFolder):
    engine = database.engine()
    result, findings, compute_seconds = checked_report(engine, instant_or_failure(settings.as_of_setting()))
    results = check_results(findings)
    failed = blocking_failures(findings)
    if failed:
        yield from results
        raise dg.Failure(description=f"report not published, blocking checks failed: {failed}")
    run_id = context.run.run_id
    publish_current_report(engine, result, run_id)  # the timelines the API shows
    paths = write_report_files(result.report, reports.folder, run_id)
    context.log.info(f"report as of {result.as_of_iso}: {result.store_count} stores, written to {paths[0]}")
    yield dg.MaterializeResult(
        asset_key=UPTIME_REPORT.name, metadata=report_metadata(result, paths, compute_seconds), check_results=results
    )
    yield dg.MaterializeResult(asset_key=STORE_STATUS_INTERVALS.name, metadata=intervals_metadata(result))

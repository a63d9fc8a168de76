"""As-of reports: the report for a chosen T, as a run of its own job that publishes nothing
(docs/architecture.md, "Running it the Dagster way")."""

import dagster as dg
from pydantic import Field

from storemon_assets.core import quality
from storemon_assets.core.instants import as_of_instant, parse_as_of
from storemon_assets.defs.resources import ReportsFolder, StoremonDatabase
from storemon_assets.defs.ui_metadata import user_errors
from storemon_assets.names import AS_OF_REPORT_JOB, AS_OF_REPORT_OP, AS_OF_TAG
from storemon_assets.service import checked_report, report_figures, write_report_text


class AsOfReportConfig(dg.Config):
    as_of: str = Field(description="Report time T: ISO-8601 (UTC unless an offset is given), or 'now'.")


@dg.op(
    name=AS_OF_REPORT_OP,
    description="The uptime report as of the configured T, written only to <run id>.csv: never to "
    "combined_report.csv, and no materialisation of uptime_report. The report's blocking checks run first.",
)
def as_of_report(
    context: dg.OpExecutionContext, config: AsOfReportConfig, database: StoremonDatabase, reports: ReportsFolder
) -> dg.Output:
    with user_errors():
        as_of_us = parse_as_of(as_of_instant(config.as_of))  # 'now' fixed once, an empty T refused
    result, findings, compute_seconds = checked_report(database.engine(), as_of_us)
    failed = quality.blocking_failures(findings)
    if failed:
        raise dg.Failure(description=f"report not written, blocking checks failed: {failed}")
    path = reports.report_path(context.run.run_id)
    write_report_text(result.report, path)
    if context.run.tags.get(AS_OF_TAG) != result.as_of_iso:  # e.g. launched from the UI's launchpad
        context.instance.add_run_tags(context.run.run_id, {AS_OF_TAG: result.as_of_iso})
    context.log.info(f"as-of report as of {result.as_of_iso}: {result.store_count} stores, written to {path}")
    return dg.Output(
        None,
        metadata=report_figures(result, compute_seconds) | {"report": dg.MetadataValue.path(str(path))},
    )


@dg.job(
    name=AS_OF_REPORT_JOB,
    description="An as-of report: the uptime report for a chosen T, written only to <run id>.csv. "
    "The published report (combined_report.csv, uptime_report) stays the current one.",
)
def as_of_report_job():
    as_of_report()

"""The hourly refresh of `combined_report.csv` (the seed system's hourly precomputation)."""

import dagster as dg

from storemon_assets.defs.jobs import report_job

hourly_report_schedule = dg.ScheduleDefinition(
    name="hourly_report_schedule",
    job=report_job,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refreshes the uptime report at the top of every hour.",
)

"""Everything Dagster loads: `dagster dev -w workspace.yaml` from the repository root."""

import dagster as dg

from storemon_assets.assets.raw import ingest_landing_files
from storemon_assets.assets.report import uptime_report
from storemon_assets.assets.stores import store_schedules
from storemon_assets.jobs import ingest_and_report_job, ingest_job, report_job, store_schedules_job
from storemon_assets.resources import default_resources

defs = dg.Definitions(
    assets=[ingest_landing_files, store_schedules, uptime_report],
    jobs=[ingest_and_report_job, ingest_job, report_job, store_schedules_job],
    resources=default_resources(),
)

"""Jobs: what a run materialises."""

import dagster as dg

from storemon_assets.defs.as_of_report import as_of_report_job
from storemon_assets.defs.assets.incidents import store_incidents
from storemon_assets.defs.assets.raw import ingest_landing_files
from storemon_assets.defs.assets.report import uptime_report
from storemon_assets.defs.assets.stores import store_schedules

# Load whatever waits in the landing folder, then refresh the report: the main job.
ingest_and_report_job = dg.define_asset_job(
    "ingest_and_report_job",
    selection=dg.AssetSelection.assets(ingest_landing_files, uptime_report, store_incidents),
    description="Load new files from the landing folder, then refresh the uptime report and its incidents.",
)
ingest_job = dg.define_asset_job(
    "ingest_job", selection=dg.AssetSelection.assets(ingest_landing_files), description="Load landing files."
)
report_job = dg.define_asset_job(
    "report_job",
    selection=dg.AssetSelection.assets(uptime_report, store_incidents),
    description="Refresh the uptime report and its incidents.",
)
store_schedules_job = dg.define_asset_job(
    "store_schedules_job",
    selection=dg.AssetSelection.assets(store_schedules),
    description="Materialise the store partitions named in the run (one run for any number of stores).",
)

# Runs of these jobs leave a report behind under their run id (the API serves them): the current
# report's jobs, and as_of_report_job (a report for a chosen T that publishes nothing).
REPORT_PRODUCING_JOBS = frozenset({report_job.name, ingest_and_report_job.name, as_of_report_job.name})

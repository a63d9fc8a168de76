"""Jobs: what a run materialises."""

import dagster as dg

from storemon_assets.defs.assets.raw import ingest_landing_files
from storemon_assets.defs.assets.report import uptime_report
from storemon_assets.defs.assets.stores import store_schedules
from storemon_assets.names import INGEST_AND_REPORT_JOB, INGEST_JOB, REPORT_JOB, STORE_SCHEDULES_JOB

# Load whatever waits in the landing folder, then refresh the report: the main job.
ingest_and_report_job = dg.define_asset_job(
    INGEST_AND_REPORT_JOB,
    selection=dg.AssetSelection.assets(ingest_landing_files, uptime_report),
    description="Load new files from the landing folder, then refresh the uptime report and its incidents.",
)
ingest_job = dg.define_asset_job(
    INGEST_JOB, selection=dg.AssetSelection.assets(ingest_landing_files), description="Load landing files."
)
report_job = dg.define_asset_job(
    REPORT_JOB,
    selection=dg.AssetSelection.assets(uptime_report),
    description="Refresh the uptime report and its incidents.",
)
store_schedules_job = dg.define_asset_job(
    STORE_SCHEDULES_JOB,
    selection=dg.AssetSelection.assets(store_schedules),
    description="Materialise the store partitions named in the run (one run for any number of stores).",
)

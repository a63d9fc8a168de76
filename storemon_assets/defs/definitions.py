"""Everything Dagster loads: `dagster dev -w workspace.yaml` from the repository root."""

import dagster as dg

from storemon_assets.defs.alerts import alerts_delivered, alerts_sensor
from storemon_assets.defs.as_of_report import as_of_report_job
from storemon_assets.defs.assets.history import store_daily_uptime
from storemon_assets.defs.assets.raw import ingest_landing_files, landing_folder
from storemon_assets.defs.assets.report import uptime_report
from storemon_assets.defs.assets.stores import store_schedules
from storemon_assets.defs.checks import raw_checks
from storemon_assets.defs.executors import selected_executor
from storemon_assets.defs.history import daily_uptime_job, daily_uptime_sensor, retention_job, retention_schedule
from storemon_assets.defs.jobs import ingest_and_report_job, ingest_job, report_job, store_schedules_job
from storemon_assets.defs.resources import default_resources
from storemon_assets.defs.schedules import hourly_report_schedule
from storemon_assets.defs.sensors import REPORT_SHARDS_SENSORS, landing_files_sensor, store_schedules_sensor

defs = dg.Definitions(
    assets=[landing_folder, ingest_landing_files, store_schedules, uptime_report, store_daily_uptime],
    asset_checks=[*raw_checks, alerts_delivered],
    jobs=[
        ingest_and_report_job,
        ingest_job,
        report_job,
        store_schedules_job,
        as_of_report_job,
        daily_uptime_job,
        retention_job,
    ],
    schedules=[hourly_report_schedule, retention_schedule],
    sensors=[landing_files_sensor, store_schedules_sensor, daily_uptime_sensor, alerts_sensor, *REPORT_SHARDS_SENSORS],
    resources=default_resources(),
    executor=selected_executor(),  # STOREMON_EXECUTOR: in_process (default), multiprocess or celery
)

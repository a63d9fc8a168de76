"""Everything Dagster loads: `dagster dev -w workspace.yaml` from the repository root. One module
per part of the product, each holding its assets, checks, jobs, schedules and sensors; Dagster
finds the assets and checks in them (its module loaders), the rest is listed."""

import dagster as dg

from storemon_assets.defs import alerts, history, raw, report, stores
from storemon_assets.defs.resources import default_resources, selected_executor

MODULES = [raw, stores, report, history, alerts]

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(MODULES, include_specs=True),
    asset_checks=dg.load_asset_checks_from_modules(MODULES),
    jobs=[
        raw.ingest_job,
        report.ingest_and_report_job,
        report.report_job,
        report.as_of_report_job,
        stores.store_schedules_job,
        history.daily_uptime_job,
        history.retention_job,
    ],
    schedules=[report.hourly_report_schedule, history.retention_schedule],
    sensors=[
        raw.landing_files_sensor,
        stores.store_schedules_sensor,
        report.report_shards_sensor,
        history.daily_uptime_sensor,
        alerts.alerts_sensor,
    ],
    resources=default_resources(),
    executor=selected_executor(),  # STOREMON_EXECUTOR: in_process (default), multiprocess or celery
)

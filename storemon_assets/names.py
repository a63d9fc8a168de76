"""The names Dagster knows storemon's runs by: jobs, the as-of op, run tags.

Dagster's definitions (`defs/`) are built with these names and the HTTP API launches and
recognises runs by them, so the API never imports `defs` (nor Dagster): a plain module both
sides read.
"""

INGEST_AND_REPORT_JOB = "ingest_and_report_job"
INGEST_JOB = "ingest_job"
REPORT_JOB = "report_job"
STORE_SCHEDULES_JOB = "store_schedules_job"
AS_OF_REPORT_JOB = "as_of_report_job"
DAILY_UPTIME_JOB = "daily_uptime_job"  # a range of daily partitions of store_daily_uptime
RETENTION_JOB = "retention_job"
AS_OF_REPORT_OP = "as_of_report"  # the one op of AS_OF_REPORT_JOB; its config is {"as_of": T}

# Runs of these jobs leave a report behind under their run id (the API serves them): the
# current report's jobs, and AS_OF_REPORT_JOB (a report for a chosen T that publishes nothing).
REPORT_PRODUCING_JOBS = frozenset({REPORT_JOB, INGEST_AND_REPORT_JOB, AS_OF_REPORT_JOB})

AS_OF_TAG = "storemon/as_of"  # an as-of report's T, ISO-8601 UTC (shown on the Runs page)
# A report run's stale-data or no-data warning: the label of its metadata (output or
# materialisation), which the API sends beside the CSV as X-Report-Warning.
DATA_WARNING_LABEL = "stale_data_warning"
API_TAG = "storemon/api"  # on runs the HTTP API launched: which endpoint did
# SPEC §10: who asked for a run started through the API (a token's name, or `open:<client>`),
# which trigger it answers (identical triggers share the key: coalescing) and the launch's own
# idempotency key (a run Dagster created without confirming it is found by it).
REQUESTED_BY_TAG = "storemon/requested_by"
TRIGGER_KEY_TAG = "storemon/trigger_key"
TRIGGER_ID_TAG = "storemon/trigger_id"
# Dagster's tag on a failed run: whether the instance's run retries will re-execute it ("true").
WILL_RETRY_TAG = "dagster/will_retry"
# ... and, once the retry was launched, the retry's run id.
AUTO_RETRY_RUN_TAG = "dagster/auto_retry_run_id"

"""Alerts in Dagster: the sensor that evaluates them after each refresh of the current report, and
the warning check on their deliveries (SPEC §9; docs/monitor.md, "Where it runs")."""

import json

import dagster as dg

from storemon_assets.alerting import alerts_tick, delivery_finding
from storemon_assets.core.quality import Finding
from storemon_assets.core.tables import STORE_INCIDENTS
from storemon_assets.db.alert_ledger import failed_count
from storemon_assets.defs.resources import StoremonDatabase
from storemon_assets.defs.ui_metadata import check_evaluation, check_result

INCIDENTS_KEY = dg.AssetKey(STORE_INCIDENTS.name)
CHECK_NAME = "alerts_delivered"
SEND_SECONDS_PER_TICK = 30.0  # the tick limit is 60 s


@dg.asset_check(
    asset=INCIDENTS_KEY,
    name=CHECK_NAME,
    description="Every alert that was due reached its channels (STOREMON_ALERT_URLS): none is left failed in the "
    "ledger. Recorded by alerts_sensor after each evaluation; failed ones are retried.",
)
def alerts_delivered(database: StoremonDatabase) -> dg.AssetCheckResult:
    return check_result(Finding(*delivery_finding(None, failed_count(database.engine()))))


@dg.sensor(
    minimum_interval_seconds=5,  # a tick that finds nothing new reads one event record
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each refresh of the current report (a new store_incidents materialisation), sends the "
    "alerts that are due through Apprise (STOREMON_ALERT_URLS), at most once each; retries failed ones "
    "once a minute.",
)
def alerts_sensor(context: dg.SensorEvaluationContext, database: StoremonDatabase):
    latest = context.instance.fetch_materializations(INCIDENTS_KEY, limit=1).records
    cursor = json.loads(context.cursor) if context.cursor else {}
    tick = alerts_tick(database.engine(), latest[0].storage_id if latest else None, cursor, SEND_SECONDS_PER_TICK)
    if tick.cursor is None:
        return dg.SkipReason(tick.message)
    if tick.delivered is None:  # nothing evaluated: STOREMON_ALERT_URLS is not set
        return dg.SensorResult(cursor=json.dumps(tick.cursor), skip_reason=tick.message)
    context.log.info(f"alerts: {tick.message} ({tick.seconds:.2f} s)")
    check = check_evaluation(INCIDENTS_KEY, CHECK_NAME, tick.delivered, failed_notifications=tick.failed_rows)
    return dg.SensorResult(cursor=json.dumps(tick.cursor), asset_events=[check], skip_reason=tick.message)

"""Alerts in Dagster: the sensor that evaluates them after each refresh of the current report, and
the warning check on their deliveries (SPEC §9; docs/monitor.md, "Where it runs")."""

from __future__ import annotations

import json
import time

import dagster as dg

from storemon_assets.alerting import (
    AlertSettings,
    delivery_finding,
    evaluate_alerts,
    evaluated_cursor,
    evaluation_due,
)
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
    seen = latest[0].storage_id if latest else None
    cursor = json.loads(context.cursor) if context.cursor else {}
    if not evaluation_due(seen, cursor, time.time()):
        return dg.SkipReason(
            "no new refresh of the current report" + (" (failed deliveries wait)" if cursor.get("retry") else "")
        )
    alert_settings = AlertSettings.from_environment()
    if not alert_settings.urls:
        return dg.SensorResult(
            cursor=json.dumps({"seen": seen}), skip_reason="STOREMON_ALERT_URLS is not set: no alerts are sent"
        )
    outcome = evaluate_alerts(database.engine(), alert_settings, budget_seconds=SEND_SECONDS_PER_TICK)
    context.log.info(f"alerts: {outcome.describe()} ({outcome.seconds:.2f} s)")
    failed_rows = failed_count(database.engine()) if outcome.failed_messages else 0
    finding = Finding(*delivery_finding(outcome, failed_rows))
    check = check_evaluation(INCIDENTS_KEY, CHECK_NAME, finding, failed_notifications=failed_rows)
    return dg.SensorResult(
        cursor=json.dumps(evaluated_cursor(seen, outcome, time.time())),
        asset_events=[check],
        skip_reason=outcome.describe(),
    )

"""Evaluate and send alerts once (SPEC §9): what the alerts sensor does after each refresh of the
current report, and what `storemon alerts` does for cron users.

It reads the current report's incidents and status now and the delivery ledger, works out what is
due (core/alerts.py) and sends it through Apprise, one channel (URL) at a time, claiming each
message's ledger rows before the send and settling them after. When a send fails, the channel's
remaining messages wait for the next evaluation (a receiver that is down would otherwise cost a
timeout per message), and the failure is counted and described in the outcome, which the sensor
shows on its tick and the CLI prints; nothing here can fail or delay the report, which was
published before.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
import sqlalchemy as sa

from storemon_assets.core.alerts import KEY, SENDING, channel_of, due_notifications, messages
from storemon_assets.core.quality import Finding
from storemon_assets.core.tables import STORE_INCIDENTS, STORE_STATUS_NOW
from storemon_assets.db.alert_ledger import claim, failed_count, read_ledger, settle
from storemon_assets.db.queries import current_report_info, read_table
from storemon_assets.service import Incidents
from storemon_assets.web import store_path

# A claim still `sending` after this long belongs to an evaluation that died mid-send.
INTERRUPTED_AFTER_US = 10 * 60 * 1_000_000


@dataclass
class AlertOutcome:
    """What one evaluation did: notifications due, messages sent and failed, and why."""

    due: int = 0
    sent_messages: int = 0
    sent_notifications: int = 0
    failed_messages: int = 0
    waiting: int = 0  # due but not tried this time (their channel failed earlier, or the time was up)
    interrupted: int = 0  # claims left `sending` by an evaluation that died mid-send
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        text = (
            f"{self.due} notifications due: {self.sent_notifications} sent in {self.sent_messages} messages, "
            f"{self.failed_messages} messages failed, {self.waiting} waiting for the next evaluation"
        )
        if self.interrupted:
            text += f", {self.interrupted} interrupted mid-send earlier (not resent)"
        return text + (f"; {'; '.join(self.errors)}" if self.errors else "")


RETRY_SECONDS = 60  # failed or waiting deliveries are tried again at most this often


def evaluation_due(seen: int | None, cursor: dict, now: float) -> bool:
    """Whether the alerts sensor evaluates now: on each new refresh of the current report (`seen`,
    the latest `store_incidents` materialisation), or, when the last evaluation left deliveries
    failed or waiting, once RETRY_SECONDS have passed since it."""
    if seen is None:
        return False
    retry_due = bool(cursor.get("retry")) and now - cursor.get("evaluated_at", 0) >= RETRY_SECONDS
    return seen != cursor.get("seen") or retry_due


def evaluated_cursor(seen: int, outcome: AlertOutcome, now: float) -> dict:
    """The cursor after an evaluation: a retry is due while anything failed or is still waiting."""
    return {"seen": seen, "retry": bool(outcome.failed_messages or outcome.waiting), "evaluated_at": now}


def delivery_finding(outcome: AlertOutcome | None, failed_rows: int) -> tuple[bool, str]:
    """Whether every due alert was delivered, and the words for it: the evaluation's own account
    when there was one, else what the ledger holds (`failed_rows` notifications left failed)."""
    passed = failed_rows == 0 and (outcome is None or not outcome.failed_messages)
    if outcome is not None:
        return passed, outcome.describe()
    return passed, "no failed deliveries" if passed else f"{failed_rows} notifications failed"


@dataclass(frozen=True)
class AlertsTick:
    """What one tick of the alerts sensor did: the cursor to keep (None: nothing to do), its words,
    and after an evaluation, the `alerts_delivered` verdict (delivery_finding) and its cost."""

    cursor: dict | None
    message: str
    delivered: Finding | None = None
    failed_rows: int = 0
    seconds: float = 0.0


def alerts_tick(engine: sa.Engine, seen: int | None, cursor: dict, budget_seconds: float) -> AlertsTick:
    """The alerts sensor's tick: evaluate when due (evaluation_due; `seen`: the latest
    `store_incidents` materialisation), sending for at most `budget_seconds`."""
    if seen is None or not evaluation_due(seen, cursor, time.time()):
        waiting = " (failed deliveries wait)" if cursor.get("retry") else ""
        return AlertsTick(None, "no new refresh of the current report" + waiting)
    alert_settings = AlertSettings.from_environment()
    if not alert_settings.urls:
        return AlertsTick({"seen": seen}, "STOREMON_ALERT_URLS is not set: no alerts are sent")
    outcome = evaluate_alerts(engine, alert_settings, budget_seconds=budget_seconds)
    failed_rows = failed_count(engine) if outcome.failed_messages else 0
    delivered = Finding(*delivery_finding(outcome, failed_rows))
    cursor = evaluated_cursor(seen, outcome, time.time())
    return AlertsTick(cursor, outcome.describe(), delivered, failed_rows, outcome.seconds)


@dataclass(frozen=True)
class AlertSettings:
    urls: list[str]
    min_down_minutes: int = 30
    max_per_message: int = 20
    public_url: str | None = None

    @property
    def store_link(self) -> Callable[[str], str] | None:
        """The address of a store's page in messages, when STOREMON_PUBLIC_URL is set."""
        public_url = self.public_url
        return (lambda store_id: public_url + store_path(store_id)) if public_url else None

    @classmethod
    def from_environment(cls) -> AlertSettings:
        from storemon_assets import settings

        return cls(
            settings.alert_urls(),
            settings.alert_min_down_minutes(),
            settings.alert_max_per_message(),
            settings.public_url(),
        )


def send(url: str, title: str, body: str, notify_type: str) -> str | None:
    """Send one message through Apprise; None when it was delivered, else why not. Apprise is
    imported here, not with the module: every Dagster process loads this module, few send."""
    with warnings.catch_warnings():  # apprise 1.9-2.x imports the deprecated imghdr: not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return "not a usable Apprise URL"
    with apprise.LogCapture(level=logging.WARNING) as log:
        delivered = notifier.notify(title=title, body=body, notify_type=notify_type)
    if delivered:
        return None
    reason = " ".join(line.strip() for line in log.getvalue().splitlines() if line.strip())
    return reason[:300] or "delivery failed"


def stored_incidents(engine: sa.Engine) -> Incidents | None:
    """The current report's incidents and status now, as the store_incidents asset stored them."""
    info = current_report_info(engine)
    if info is None:
        return None
    return Incidents(info["as_of_us"], read_table(engine, STORE_INCIDENTS), read_table(engine, STORE_STATUS_NOW))


def evaluate_alerts(
    engine: sa.Engine,
    alert_settings: AlertSettings,
    budget_seconds: float | None = None,
    current: Incidents | None = None,
) -> AlertOutcome:
    """Send every notification due, at most once each (see the module docstring), for `current`
    (default: the current report's stored incidents).

    With `budget_seconds`, no message is started after that long: the rest wait for the next evaluation.
    """
    started = time.perf_counter()
    outcome = AlertOutcome()
    if current is None:
        current = stored_incidents(engine)
    if not alert_settings.urls or current is None or current.as_of_us is None:
        return outcome
    as_of_us = current.as_of_us
    ledger = read_ledger(engine)
    outcome.interrupted = ledger.filter(
        (pl.col("state") == SENDING) & (pl.col("updated_us") < time.time_ns() // 1000 - INTERRUPTED_AFTER_US)
    ).height
    channels = {channel_of(url): url for url in alert_settings.urls}
    due = due_notifications(
        current.status,
        current.incidents,
        ledger,
        list(channels),
        as_of_us,
        alert_settings.min_down_minutes,
    )
    outcome.due = due.height
    failed_channels: set[str] = set()
    link = alert_settings.store_link
    for message in messages(due, alert_settings.max_per_message, link):
        out_of_time = budget_seconds is not None and time.perf_counter() - started > budget_seconds
        if message.channel in failed_channels or out_of_time:
            outcome.waiting += message.keys.height
            continue
        won = claim(engine, message.keys, as_of_us)
        if won.is_empty():
            continue  # another evaluation sent it
        # Another evaluation took part of a summary: say only what this one won.
        parts = (
            [message]
            if won.height == message.keys.height
            else messages(due.join(won, on=KEY), alert_settings.max_per_message, link)
        )
        for part in parts:
            error = send(channels[part.channel], part.title, part.body, part.apprise_type)
            settle(engine, part.keys, error)
            if error is None:
                outcome.sent_messages += 1
                outcome.sent_notifications += part.keys.height
            else:
                outcome.failed_messages += 1
                failed_channels.add(part.channel)
                outcome.errors.append(f"channel {part.channel}: {error}")
                break
    outcome.seconds = time.perf_counter() - started
    return outcome

"""Alerts (SPEC §9) through a real Apprise `json://` URL to a real HTTP receiver on 127.0.0.1.

Stores are in UTC and open 09:00-17:00 every day unless said otherwise; T is Friday 2023-01-20
12:00 UTC unless said otherwise. Each scenario loads feed files into a fresh SQLite database,
publishes the report as of T and its incidents (the same service calls the report run makes) and
evaluates the alerts as the sensor and `storemon alerts` do.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from storemon_assets.alerting import AlertSettings, evaluate_alerts
from storemon_assets.core.alerts import channel_of
from storemon_assets.core.tables import ALERT_DELIVERIES
from storemon_assets.db.engine import open_database
from storemon_assets.db.queries import read_table
from storemon_assets.service import build_report, ingest_files, publish_current_report
from storemon_assets.settings import sqlite_url
from storemon_tests.conftest import Receiver
from storemon_tests.helpers import at, run_storemon, write_csv

T = "2023-01-20 12:00"


class Fleet:
    """A storemon database that polls are added to, with the report and incidents published as of T."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.engine = open_database(sqlite_url(folder / "storemon.db"))
        self.deliveries = 0

    def load(
        self,
        polls: list[tuple[str, str, str]],
        hours: dict[str, tuple[str, str]] | None = None,
        closed_on: dict[str, str] | None = None,
    ) -> None:
        """polls: (store, 'YYYY-MM-DD HH:MM' UTC, status); hours: store -> (opens, closes) every day;
        closed_on: store -> a local date it is closed all day (a special-hours row, SPEC 4a)."""
        self.deliveries += 1
        n = self.deliveries
        stores = sorted({p[0] for p in polls} | set(hours or {}))
        files = [
            write_csv(
                self.folder,
                f"polls{n}.csv",
                "store_id,status,timestamp_utc\n" + "".join(f'"{s}",{st},{w}:00 UTC\n' for s, w, st in polls),
            ),
            write_csv(
                self.folder, f"zones{n}.csv", "store_id,timezone_str\n" + "".join(f'"{s}",UTC\n' for s in stores)
            ),
        ]
        all_hours = {s: ("09:00", "17:00") for s in stores} | (hours or {})
        rows = "".join(f'"{s}",{d},{a},{b}\n' for s, (a, b) in all_hours.items() for d in range(7))
        files.append(
            write_csv(self.folder, f"hours{n}.csv", "store_id,dayOfWeek,start_time_local,end_time_local\n" + rows)
        )
        if closed_on:
            special = "".join(f'"{s}",{date},,\n' for s, date in closed_on.items())
            files.append(
                write_csv(
                    self.folder, f"special{n}.csv", "store_id,date_local,start_time_local,end_time_local\n" + special
                )
            )
        ingest_files(self.engine, files)

    def publish(self, as_of: str = T) -> None:
        result = build_report(self.engine, at(as_of))
        publish_current_report(self.engine, result, f"report-{as_of}", stale_after_minutes=120)

    def alert(self, *urls: str, max_per_message: int = 20, public_url: str | None = None):
        return evaluate_alerts(self.engine, AlertSettings(list(urls), 30, max_per_message, public_url))

    def ledger(self) -> pl.DataFrame:
        return read_table(self.engine, ALERT_DELIVERIES)


def down_since_nine(store: str) -> list[tuple[str, str, str]]:
    """Inactive at 09:05 and 11:55: down all of Friday's business time to T (180 min), and reporting."""
    return [(store, "2023-01-20 09:05", "inactive"), (store, "2023-01-20 11:55", "inactive")]


@pytest.fixture
def fleet(tmp_path, migrated_sqlite) -> Fleet:
    shutil.copyfile(migrated_sqlite, tmp_path / "storemon.db")  # at the current schema: nothing to migrate
    fleet = Fleet(tmp_path)
    yield fleet
    fleet.engine.dispose()


def test_down_after_30_business_minutes_while_open_and_not_before(fleet, receiver):
    fleet.load(
        [
            # a: midpoint of 09:05 active and 10:30 inactive is 09:47:30; down to T: 132.5 min >= 30.
            ("a", "2023-01-20 09:05", "active"),
            ("a", "2023-01-20 10:30", "inactive"),
            ("a", "2023-01-20 11:50", "inactive"),
            # b: midpoint of 11:30 active and 11:55 inactive is 11:42:30; down 17.5 min < 30.
            ("b", "2023-01-20 11:30", "active"),
            ("b", "2023-01-20 11:55", "inactive"),
        ]
    )
    fleet.publish()
    outcome = fleet.alert(receiver.url())
    assert outcome.due == outcome.sent_notifications == 1
    [message] = receiver.messages
    assert message["type"] == "failure"
    assert message["title"] == "storemon: store a is down"
    assert message["message"] == (
        "Store a down since 2023-01-20 09:47 UTC (2023-01-20 09:47 UTC), 132.5 business minutes down"
    )


def test_quiet_while_closed_then_down_and_not_reporting_once_it_opens(fleet, receiver):
    # c opens 13:00-17:00: down all of Thursday (polls 14:00 and 16:00, inactive), closed at T = 12:00.
    fleet.load(
        [("c", "2023-01-19 14:00", "inactive"), ("c", "2023-01-19 16:00", "inactive")], {"c": ("13:00", "17:00")}
    )
    fleet.publish()
    assert fleet.alert(receiver.url()).due == 0 and receiver.messages == []  # closed: its alert waits
    fleet.publish("2023-01-20 13:30")  # open for 30 min, no new poll: newest poll 21.5 h old > 120 min
    outcome = fleet.alert(receiver.url())
    assert sorted(receiver.titles()) == ["storemon: store c is down", "storemon: store c is not reporting"]
    assert outcome.sent_notifications == 2
    warning = next(m for m in receiver.messages if m["type"] == "warning")
    assert warning["message"] == (
        "Store c not reporting: open, newest poll 2023-01-19 16:00 UTC (2023-01-19 16:00 UTC); "
        "its status (down) is a guess"
    )
    # Its only observations are inactive, so all of the week [Jan 13 13:30, Jan 20 13:30) is down:
    # Jan 13 13:30-17:00 (210 min) + Jan 14-19 (6 x 240 min) + Jan 20 13:00-13:30 (30 min) = 1680 min.
    down = next(m for m in receiver.messages if m["type"] == "failure")
    assert down["message"] == (
        "Store c down since 2023-01-13 13:30 UTC (2023-01-13 13:30 UTC), 1680.0 business minutes down"
    )


def test_each_notification_once_across_restarts(fleet, receiver, tmp_path):
    fleet.load(down_since_nine("a"))
    fleet.publish()
    assert fleet.alert(receiver.url()).sent_notifications == 1
    fleet.publish()  # the next hourly refresh, same state
    assert fleet.alert(receiver.url()).due == 0
    fleet.engine.dispose()  # a restart: a new process, a new engine on the same database
    again = Fleet(tmp_path)
    again.publish()
    assert again.alert(receiver.url()).due == 0
    assert len(receiver.messages) == 1
    again.engine.dispose()


def test_receiver_down_then_up_delivers_every_due_notification_exactly_once(fleet, receiver):
    fleet.load([poll for store in ("a", "b", "c") for poll in down_since_nine(store)])
    fleet.publish()
    receiver.down = True
    first = fleet.alert(receiver.url())
    # The first message failed; the channel's other two wait instead of failing in turn.
    assert (first.due, first.failed_messages, first.waiting, first.sent_messages) == (3, 1, 2, 0)
    assert "503" in first.errors[0]
    for _ in range(3):  # an hour of refreshes while it stays down
        fleet.publish()
        fleet.alert(receiver.url())
    assert receiver.messages == []
    receiver.down = False
    back = fleet.alert(receiver.url())
    assert back.sent_notifications == 3 and back.failed_messages == 0
    assert fleet.alert(receiver.url()).due == 0
    assert sorted(receiver.titles()) == [f"storemon: store {s} is down" for s in ("a", "b", "c")]
    ledger = fleet.ledger()
    assert ledger.get_column("state").to_list() == ["sent"] * 3
    assert ledger.filter(pl.col("store_id") == "a").item(0, "attempts") == 5  # 4 failed + 1 delivered


def test_a_storm_of_500_stores_is_one_summary_naming_every_store(fleet, receiver):
    stores = [f"s{n:03d}" for n in range(500)]
    fleet.load([poll for store in stores for poll in down_since_nine(store)])
    fleet.publish()
    outcome = fleet.alert(receiver.url())
    assert (outcome.due, outcome.sent_messages, outcome.sent_notifications) == (500, 1, 500)
    [summary] = receiver.messages
    assert summary["title"] == "storemon: 500 stores are down"
    lines = summary["message"].splitlines()
    assert [line.split(" ")[1] for line in lines] == stores
    assert fleet.alert(receiver.url()).due == 0


def test_twenty_at_once_go_one_by_one_and_twenty_one_as_a_summary(fleet, receiver):
    fleet.load([poll for n in range(21) for poll in down_since_nine(f"s{n:02d}")])
    fleet.publish()
    fleet.alert(receiver.url(), max_per_message=21)  # 21 due, at most 21 per message: one each
    assert len(receiver.messages) == 21
    other = Receiver(port=receiver.port)
    fleet.alert(other.url("second-channel"), max_per_message=20)  # a second channel: 21 > 20
    assert receiver.titles()[21:] == ["storemon: 21 stores are down"]


def test_recovered_once_when_a_notified_incident_ends(fleet, receiver):
    # Up on Thursday (16:00 active): the midpoint to Friday 09:05 falls in the night, so a is down
    # from Friday's opening.
    fleet.load([("a", "2023-01-19 16:00", "active"), *down_since_nine("a")])
    fleet.publish()
    fleet.alert(receiver.url())
    # Polls at 12:30 (active) and 13:00: the midpoint of 11:55 and 12:30 is 12:12:30, so a was down
    # 09:00-12:12:30 (192.5 min) and is up since.
    fleet.load([("a", "2023-01-20 12:30", "active"), ("a", "2023-01-20 13:00", "active")])
    fleet.publish("2023-01-20 13:00")
    fleet.alert(receiver.url())
    fleet.publish("2023-01-20 13:00")
    assert fleet.alert(receiver.url()).due == 0  # once
    assert [m["type"] for m in receiver.messages] == ["failure", "success"]
    assert receiver.messages[1]["title"] == "storemon: store a recovered"
    assert receiver.messages[1]["message"] == (
        "Store a up again since 2023-01-20 12:12 UTC (2023-01-20 12:12 UTC) after 192.5 business minutes down"
    )


def test_an_incident_older_than_the_week_is_notified_once_as_t_moves(fleet, receiver):
    # Down since Jan 10: every report starts the incident at its week's start, which moves with T.
    fleet.load([("a", "2023-01-10 10:00", "inactive")])
    fleet.publish()
    fleet.alert(receiver.url())
    for later in ("2023-01-20 13:00", "2023-01-20 14:00", "2023-01-21 10:00"):
        fleet.publish(later)
        fleet.alert(receiver.url())
    # (It is also not reporting, polled 10 days before T: that warning too is sent once.)
    assert sorted(receiver.titles()) == ["storemon: store a is down", "storemon: store a is not reporting"]


def test_not_reporting_once_until_a_poll_arrives(fleet, receiver):
    fleet.load([("a", "2023-01-20 09:30", "active")])  # 150 min before T > 120: not reporting
    fleet.publish()
    fleet.alert(receiver.url())
    fleet.publish()
    fleet.alert(receiver.url())
    assert receiver.titles() == ["storemon: store a is not reporting"]
    fleet.load([("a", "2023-01-20 12:30", "active")])  # it reports again...
    fleet.publish("2023-01-20 13:00")
    assert fleet.alert(receiver.url()).due == 0
    fleet.publish("2023-01-20 15:00")  # ...and falls silent again: told once more
    fleet.alert(receiver.url())
    assert receiver.titles() == ["storemon: store a is not reporting"] * 2


def test_hostile_store_ids_go_out_verbatim_and_links_encode_them(fleet, receiver):
    hostile = 'a<b>&"c/d?e#f'
    fleet.load([(hostile.replace('"', '""'), when, status) for _, when, status in down_since_nine("x")])  # CSV-quoted
    fleet.publish()
    fleet.alert(receiver.url(), public_url="https://storemon.example")
    [message] = receiver.messages
    assert message["title"] == f"storemon: store {hostile} is down"
    assert message["message"].splitlines()[-1] == "https://storemon.example/stores/a%3Cb%3E%26%22c%2Fd%3Fe%23f"


def test_a_refused_connection_is_a_failure_that_waits_and_the_ledger_names_only_a_hash(fleet, receiver):
    fleet.load(down_since_nine("a"))
    fleet.publish()
    url = "json://127.0.0.1:9/secret-token"  # port 9 (discard): nothing listens
    outcome = fleet.alert(url)
    assert outcome.failed_messages == 1 and outcome.sent_messages == 0
    ledger = fleet.ledger()
    assert ledger.get_column("channel").to_list() == [channel_of(url)]
    assert "secret-token" not in ledger.write_csv()
    assert ledger.item(0, "state") == "failed" and ledger.item(0, "last_error")


# --- the two front doors: the Dagster sensor and `storemon alerts` ---------------------------


def test_the_sensor_evaluates_once_per_refresh_and_its_check_shows_failures(home, instance, receiver, monkeypatch):
    import dagster as dg

    from storemon_assets.defs.alerts import alerts_sensor
    from storemon_assets.defs.raw import ingest_landing_files
    from storemon_assets.defs.report import uptime_report

    monkeypatch.setenv("STOREMON_ALERT_URLS", receiver.url())
    monkeypatch.setenv("STOREMON_AS_OF", "2023-01-20T12:00:00Z")
    folder = home.root / "feeds"
    polls = [poll for store in ("a", "b") for poll in down_since_nine(store)]
    write_csv(
        folder, "polls.csv", "store_id,status,timestamp_utc\n" + "".join(f"{s},{st},{w}:00 UTC\n" for s, w, st in polls)
    )
    home.drop(folder / "polls.csv")
    context = lambda cursor=None: dg.build_sensor_context(  # noqa: E731
        instance=instance, cursor=cursor, resources={"database": home.database}
    )
    assert isinstance(alerts_sensor(context()), dg.SkipReason)  # no report yet: nothing to evaluate

    receiver.down = True
    assets = [ingest_landing_files, uptime_report]
    assert dg.materialize(assets, resources=home.resources, instance=instance).success
    failed = alerts_sensor(context())
    assert "2 notifications due: 0 sent in 0 messages, 1 messages failed, 1 waiting" in failed.skip_reason.skip_message
    [check] = failed.asset_events
    assert (check.check_name, check.passed) == ("alerts_delivered", False)
    assert isinstance(alerts_sensor(context(failed.cursor)), dg.SkipReason)  # retries wait a minute

    receiver.down = False
    assert dg.materialize(assets, resources=home.resources, instance=instance).success  # the next refresh
    delivered = alerts_sensor(context(failed.cursor))
    assert sorted(receiver.titles()) == ["storemon: store a is down", "storemon: store b is down"]
    assert delivered.asset_events[0].passed
    assert isinstance(alerts_sensor(context(delivered.cursor)), dg.SkipReason)  # nothing new: no evaluation
    assert len(receiver.messages) == 2


def test_storemon_alerts_sends_once_for_cron_users(tmp_path, receiver):
    folder = tmp_path / "feeds"
    polls = down_since_nine("a")
    path = write_csv(
        folder, "polls.csv", "store_id,status,timestamp_utc\n" + "".join(f"{s},{st},{w}:00 UTC\n" for s, w, st in polls)
    )
    env = {"STOREMON_DATABASE_URL": sqlite_url(tmp_path / "s.db"), "STOREMON_ALERT_URLS": receiver.url()}

    def storemon(*args: str):
        return run_storemon(*args, env=env)

    assert storemon("ingest", "--quiet", str(path)).returncode == 0
    first = storemon("alerts", "--as-of", "2023-01-20T12:00:00Z")
    assert first.returncode == 0, first.stderr
    assert "alerts: 1 notifications due: 1 sent in 1 messages" in first.stderr
    again = storemon("alerts", "--as-of", "2023-01-20T12:00:00Z")
    assert "alerts: 0 notifications due" in again.stderr
    assert receiver.titles() == ["storemon: store a is down"]
    unset = run_storemon("alerts", env={**env, "STOREMON_ALERT_URLS": ""})
    assert unset.returncode == 2 and "STOREMON_ALERT_URLS is not set" in unset.stderr


def test_a_summary_says_only_what_this_evaluation_won_when_another_claims_part_of_it(fleet, receiver, monkeypatch):
    from storemon_assets import alerting
    from storemon_assets.db.alert_ledger import claim

    fleet.load([poll for n in range(22) for poll in down_since_nine(f"s{n:02d}")])
    fleet.publish()

    def rival_first(engine, keys, as_of_us):
        """Another evaluator (storemon alerts beside the sensor) claims the first store a moment earlier."""
        claim(engine, keys.head(1), as_of_us)
        return claim(engine, keys, as_of_us)

    monkeypatch.setattr(alerting, "claim", rival_first)
    outcome = fleet.alert(receiver.url())
    assert (outcome.due, outcome.sent_notifications) == (22, 21)
    [summary] = receiver.messages  # 21 won, still more than 20: one summary, without s00
    assert summary["title"] == "storemon: 21 stores are down" and "Store s00 " not in summary["message"]


def test_a_special_closed_day_holds_alerts_until_the_store_opens_again(fleet, receiver):
    # Closed all of Friday 20 January (a special-hours row): at T = Friday 12:00 the store is outside
    # its business time, so its down alert waits and it is not "not reporting" either, though its
    # newest poll (Thursday 16:55) is 19 h old.
    fleet.load(
        [("a", "2023-01-19 09:05", "inactive"), ("a", "2023-01-19 16:55", "inactive")], closed_on={"a": "2023-01-20"}
    )
    fleet.publish()
    assert fleet.alert(receiver.url()).due == 0 and receiver.messages == []
    # Saturday 09:30: open again, still no poll. Down since the week's start (all observations
    # inactive), and silent: both go out now.
    fleet.publish("2023-01-21 09:30")
    fleet.alert(receiver.url())
    assert sorted(receiver.titles()) == ["storemon: store a is down", "storemon: store a is not reporting"]


def test_alerts_sensor_evaluates_on_each_new_refresh_and_retries_at_most_once_a_minute():
    """The sensor's decision, without Dagster: a new refresh always evaluates; the same refresh
    evaluates again only when deliveries were left failed or waiting and RETRY_SECONDS (60) passed."""
    from storemon_assets.alerting import AlertOutcome, evaluated_cursor, evaluation_due

    assert not evaluation_due(None, {}, now=1_000.0)  # no refresh yet
    assert evaluation_due(7, {}, now=1_000.0)  # first refresh seen
    all_through = evaluated_cursor(7, AlertOutcome(due=2, sent_messages=1), now=1_000.0)
    assert all_through["retry"] is False
    assert not evaluation_due(7, all_through, now=5_000.0)  # nothing to retry, however long after
    assert evaluation_due(8, all_through, now=1_001.0)  # a new refresh
    failed = evaluated_cursor(7, AlertOutcome(due=2, failed_messages=1), now=1_000.0)
    assert not evaluation_due(7, failed, now=1_059.0)  # 59 s < 60 s
    assert evaluation_due(7, failed, now=1_060.0)  # 60 s >= 60 s
    waiting = evaluated_cursor(7, AlertOutcome(due=3, waiting=3), now=1_000.0)
    assert evaluation_due(7, waiting, now=1_060.0)


def test_delivery_finding_fails_on_failed_messages_or_failed_ledger_rows():
    from storemon_assets.alerting import AlertOutcome, delivery_finding

    assert delivery_finding(None, 0) == (True, "no failed deliveries")
    assert delivery_finding(None, 3) == (False, "3 notifications failed")
    outcome = AlertOutcome(due=2, failed_messages=1, errors=["json://x: refused"])
    passed, description = delivery_finding(outcome, 2)
    assert not passed and description == outcome.describe() and "1 messages failed" in description
    assert delivery_finding(AlertOutcome(due=1, sent_messages=1, sent_notifications=1), 0)[0]


def test_without_alert_urls_a_tick_records_the_refresh_as_seen_and_sends_nothing(home, monkeypatch):
    # The sensor's tick (alerting.alerts_tick) with STOREMON_ALERT_URLS unset: a new refresh
    # (storage id 7) is marked seen, so it is not looked at again, and nothing is evaluated.
    from storemon_assets.alerting import alerts_tick

    monkeypatch.delenv("STOREMON_ALERT_URLS", raising=False)
    engine = home.database.engine()
    assert alerts_tick(engine, None, {}, 30.0).cursor is None  # no refresh yet: nothing to do
    unset = alerts_tick(engine, 7, {}, 30.0)
    assert unset.cursor == {"seen": 7} and unset.delivered is None
    assert unset.message == "STOREMON_ALERT_URLS is not set: no alerts are sent"
    assert alerts_tick(engine, 7, unset.cursor, 30.0).cursor is None  # the same refresh: not again

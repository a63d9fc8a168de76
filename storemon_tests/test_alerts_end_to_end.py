"""End to end: a poll file dropped into the landing folder of a running `dagster dev` (the processes
`make run` starts) becomes a down notification at a real HTTP receiver, through Apprise, with no
click: landing sensor -> ingest and report run (incidents published with the report) -> alerts
sensor. The time from the drop to the notification is printed (docs/monitor.md quotes it)."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from storemon_assets.settings import SAMPLE_DATA_DIR
from storemon_tests.dagster_server import dagster_dev, wait_for
from storemon_tests.helpers import write_csv

pytestmark = pytest.mark.e2e


def test_a_dropped_poll_file_becomes_a_down_notification(tmp_path, receiver):
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    for source in SAMPLE_DATA_DIR.glob("*.csv"):
        shutil.copy(source, landing / source.name)
    env = {"STOREMON_ALERT_URLS": receiver.url(), "STOREMON_PUBLIC_URL": "http://storemon.test"}

    with dagster_dev(tmp_path, extra_env=env):
        # The sample is ingested and reported; what is due in it goes out first.
        wait_for(lambda: receiver.messages or None, 240, "the sample's first alerts")
        time.sleep(5)  # let that evaluation finish
        first = len(receiver.messages)

        # e2e-store is open around the clock (no hours) and inactive shortly before the sample's newest
        # poll (2023-01-25 18:1x, still T): down since the week's start, far past 30 minutes.
        dropped = time.monotonic()
        write_csv(
            landing,
            "e2e_polls.csv",
            "store_id,status,timestamp_utc\n"
            "e2e-store,inactive,2023-01-25 17:33:00 UTC\ne2e-store,inactive,2023-01-25 18:11:00 UTC\n",
        )

        def notified():
            return next((m for m in receiver.messages[first:] if "e2e-store" in m["message"]), None)

        message = wait_for(notified, 240, "the down notification of the dropped store")
        seconds = time.monotonic() - dropped
        print(f"\ndrop -> notification: {seconds:.1f} s (load average {os.getloadavg()[0]:.1f})")
        assert message["type"] == "failure"
        # Down since the week's start (T minus 7 days, T being the sample's newest poll), all 7 x 24 h of it.
        assert "Store e2e-store down since 2023-01-18 18:1" in message["message"]
        assert "10080.0 business minutes down" in message["message"]
        assert "http://storemon.test/stores/e2e-store" in message["message"] or " stores are down" in message["title"]

        # Nothing is sent twice: the next refreshes find nothing new to say about it.
        time.sleep(15)
        mentions = [m for m in receiver.messages if "e2e-store" in m["message"] and m["type"] == "failure"]
        assert len(mentions) == 1

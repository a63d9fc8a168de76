"""A prune killed (kill -9) at any moment leaves a consistent database that the next prune
completes (SPEC §11). Marked e2e: it runs `storemon db prune` as processes and kills them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from storemon_assets.db.engine import open_database
from storemon_assets.db.queries import newest_poll_us
from storemon_assets.history import prune
from storemon_tests.test_retention import answers, generated_database

pytestmark = pytest.mark.e2e


def test_a_prune_killed_at_any_moment_leaves_a_consistent_database_the_next_prune_completes(tmp_path):
    """kill -9 after each step's progress line (and once at the very start): the database is
    intact, no answer changed, and the next prune finishes the job."""
    engine = generated_database(tmp_path, stores=60, days=24, seed=5)
    newest = newest_poll_us(engine)
    expected = answers(engine, newest)
    engine.dispose()
    env = os.environ | {
        "STOREMON_DATABASE_URL": f"sqlite:///{tmp_path / 'storemon.db'}",
        "STOREMON_REPORTS_DIR": str(tmp_path / "r"),
    }
    command = [sys.executable, "-m", "storemon_assets.cli", "db", "prune", "--retention-days", "9"]
    for after_line in ("open database", "cutoff", "daily values", "plan", "delete polls"):
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        for line in process.stderr:
            if line.startswith(after_line):
                break
        process.send_signal(signal.SIGKILL)
        process.wait()
        engine = open_database(env["STOREMON_DATABASE_URL"])
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        for old, new in zip(expected, answers(engine, newest), strict=True):
            assert new.equals(old), f"killed after {after_line!r}"
        engine.dispose()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "polls deleted" in done.stderr
    engine = open_database(env["STOREMON_DATABASE_URL"])
    for old, new in zip(expected, answers(engine, newest), strict=True):
        assert new.equals(old)
    again = prune(engine, 9)
    assert again.polls_deleted == 0  # the killed runs and the last one did it all
    engine.dispose()

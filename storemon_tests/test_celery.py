"""The sharded report on real Celery workers: a Redis broker, the Dagster instance and the storemon
database on PostgreSQL (deploy/dagster.yaml), two `storemon worker` processes, and the report
job launched the way an operator would (`dagster job execute`)."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from storemon_assets.core.generate import generate_feeds
from storemon_assets.core.uptime import report_csv
from storemon_assets.local_servers import REPO, SERVER_INSTANCE_CONFIG, storemon_workers, wait_for
from storemon_assets.service import COMBINED_REPORT_NAME, build_report, ingest_files
from storemon_tests.conftest import (
    dagster_postgres_env,
    fresh_postgres_database,
    fresh_postgres_engine,
    postgres_url,
    redis_url,
)

pytestmark = pytest.mark.e2e

DAGSTER = str(Path(sys.executable).parent / "dagster")
SHARDS = 3


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    expected: str  # the report computed in this process, unsharded

    @property
    def combined(self) -> Path:
        return self.root / "data" / "reports" / COMBINED_REPORT_NAME

    def launch_report(self, executor: str) -> subprocess.Popen:
        env = {**self.env, "STOREMON_EXECUTOR": executor}
        args = [DAGSTER, "job", "execute", "-m", "storemon_assets.defs.definitions", "-j", "report_job"]
        log = (self.root / f"run_{executor}.log").open("wb")
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def private_broker(url: str) -> str:
    """The test server, on a Redis database of its own (1-15) so concurrent test runs on one
    machine never take each other's tasks."""
    parsed = sa.make_url(url.replace("redis://", "postgresql://", 1))  # only to split host/port
    return f"redis://{parsed.host}:{parsed.port or 6379}/{random.randint(1, 15)}"


@pytest.fixture
def cluster(tmp_path) -> Cluster:
    broker = private_broker(redis_url())
    instance_url = fresh_postgres_database("dagster_celery")
    engine = fresh_postgres_engine()
    try:
        feeds = generate_feeds(stores=1500, days=8, seed=12).write(tmp_path / "feeds")
        ingest_files(engine, feeds.values())
        expected = report_csv(build_report(engine).report)
    finally:
        engine.dispose()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(SERVER_INSTANCE_CONFIG, dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        **dagster_postgres_env(instance_url),
        "DAGSTER_HOME": str(dagster_home),
        "STOREMON_HOME": str(tmp_path),
        "STOREMON_DATABASE_URL": postgres_url(),
        "STOREMON_CELERY_BROKER": broker,
        "STOREMON_REPORT_SHARDS": str(SHARDS),
    }
    return Cluster(tmp_path, env, expected)


def steps_done(log: Path) -> list[str]:
    """Step keys a worker finished, from its log."""
    return re.findall(r" - (uptime_report\.[\w\[\]]+) - STEP_SUCCESS", log.read_text(errors="replace"))


def test_celery_workers_publish_the_same_report_as_the_in_process_run(cluster):
    in_process = cluster.launch_report("in_process")
    assert in_process.wait(180) == 0
    assert cluster.combined.read_text() == cluster.expected
    cluster.combined.unlink()

    with storemon_workers(2, cluster.env, cluster.root) as workers:
        run = cluster.launch_report("celery")
        assert run.wait(300) == 0, (cluster.root / "run_celery.log").read_text()[-3000:]
        done = [steps_done(log) for _, log in workers]

    assert cluster.combined.read_text() == cluster.expected
    # Every step ran on a worker, the shards on both of them.
    all_done = sorted(step for steps in done for step in steps)
    assert len(all_done) == SHARDS + 2  # plan, 3 shards, publish
    assert all(any("compute_report_shard" in step for step in steps) for steps in done)


def test_a_worker_killed_mid_step_is_replaced_and_no_partial_report_is_published(cluster):
    with storemon_workers(2, cluster.env, cluster.root, visibility_timeout=15) as workers:
        run = cluster.launch_report("celery")

        def worker_inside_a_shard_step():
            for process, log in workers:
                found = re.search(
                    r" - (uptime_report\.compute_report_shard\[\w+\]) - ", log.read_text(errors="replace")
                )
                if found:
                    return process, log, found.group(1)
            return None

        victim, victim_log, step = wait_for(worker_inside_a_shard_step, 180, "a shard step on a worker", 0.05)
        os.killpg(victim.pid, signal.SIGKILL)  # the whole worker, as a lost machine
        victim.wait(10)
        assert not cluster.combined.exists()  # nothing published while a shard is missing

        returncode = run.wait(300)
        survivor_log = next(log for _, log in workers if log != victim_log)

    run_log = (cluster.root / "run_celery.log").read_text(errors="replace")
    assert step not in steps_done(victim_log)  # killed before it finished ...
    assert returncode == 0, run_log[-3000:]
    assert step in steps_done(survivor_log)  # ... and run again by the other worker
    assert cluster.combined.read_text() == cluster.expected

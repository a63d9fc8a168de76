"""`storemon dev`'s Dagster processes end without tearing down their interpreter
(storemon_assets/dev_quick_exit/sitecustomize.py), keeping their exit status; run and step
workers are left alone. The stop itself is timed end to end in test_stopping.py (e2e)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storemon_assets.dev import QUICK_EXIT, dagster_dev_environment


def _quick_exit_module():
    spec = importlib.util.spec_from_file_location("quick_exit_under_test", QUICK_EXIT / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # this test process is no Dagster service: nothing is installed
    return module


PYTHON = "/venv/bin/python"


@pytest.mark.parametrize(
    ("argv", "service"),
    [
        ((PYTHON, "/venv/bin/dagster", "dev", "-w", "workspace.yaml"), True),
        ((PYTHON, "-m", "dagster_webserver", "--port", "3000"), True),
        ((PYTHON, "-m", "dagster._daemon", "run", "--log-level", "info"), True),
        ((PYTHON, "-m", "dagster", "code-server", "start", "--socket", "/tmp/s"), True),
        ((PYTHON, "-m", "dagster", "api", "grpc", "--lazy-load-user-code"), True),
        ((PYTHON, "-m", "dagster", "api", "execute_run", "{}"), False),  # a run worker
        ((PYTHON, "-m", "dagster", "api", "execute_step", "{}"), False),  # a step worker
        ((PYTHON, "-c", "from multiprocessing.spawn import spawn_main; spawn_main()"), False),
        ((PYTHON, "/venv/bin/storemon", "dev"), False),
        ((PYTHON,), False),
    ],
)
def test_only_dagsters_service_processes_skip_their_teardown(argv, service):
    assert _quick_exit_module()._is_dagster_service(list(argv)) is service


def test_the_dagster_processes_environment_puts_the_quick_exit_first_on_the_path():
    env = dagster_dev_environment({"PYTHONPATH": "/mine"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(QUICK_EXIT), "/mine"]
    assert dagster_dev_environment({})["PYTHONPATH"] == str(QUICK_EXIT)


def test_a_dagster_service_ending_early_keeps_its_exit_status():
    # The daemon refuses an unknown option (click: status 2) and ends through the quick exit: its
    # status must not become 0.
    env = dagster_dev_environment(dict(os.environ))
    done = subprocess.run(
        [sys.executable, "-m", "dagster._daemon", "run", "--no-such-option"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "No such option" in done.stderr  # its message was flushed before the process ended


def test_a_resource_tracker_is_stopped_and_reaped_not_waited_for():
    # The gRPC server starts multiprocessing's resource tracker with its first run. The tracker
    # ends only once its parent's end of a pipe closes, so waiting for the children first took the
    # whole CHILDREN_WAIT_SECONDS (2 s) on every stop after a run, and then left the tracker to
    # init (`storemon dev` then found a zombie in Dagster's group and SIGKILLed it after 3 s).
    module = _quick_exit_module()
    script = f"""
import importlib.util, time
from multiprocessing import resource_tracker
spec = importlib.util.spec_from_file_location("quick_exit", {str(QUICK_EXIT / "sitecustomize.py")!r})
quick_exit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quick_exit)
resource_tracker.ensure_running()
print(resource_tracker._resource_tracker._pid, time.monotonic(), flush=True)
quick_exit.end_without_teardown(3)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    ended = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    assert done.returncode == 3, done.stderr  # the status given
    tracker, calling = done.stdout.split()
    assert ended - float(calling) < module.CHILDREN_WAIT_SECONDS / 2  # not waited for
    assert not Path(f"/proc/{tracker}").exists()  # reaped by its parent, not left to init


def test_a_run_process_still_holding_the_trackers_pipe_delays_the_end_by_the_moment_at_most(tmp_path):
    # A spawned process (a run or step worker) inherits the tracker's pipe, and the tracker waits
    # for it as well: the service still ends after CHILDREN_WAIT_SECONDS, not when that process
    # does (multiprocessing's own `_stop` would wait for it without a limit).
    module = _quick_exit_module()
    script = tmp_path / "holder.py"
    script.write_text(
        f"""
import importlib.util, multiprocessing, time
spec = importlib.util.spec_from_file_location("quick_exit", {str(QUICK_EXIT / "sitecustomize.py")!r})
quick_exit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quick_exit)
if __name__ == "__main__":
    holder = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(30,))
    holder.start()
    print(holder.pid, time.monotonic(), flush=True)
    quick_exit.end_without_teardown(0)
"""
    )
    # Its output to a file: from a pipe, run() would read until the holder, which shares it, ends too.
    output = tmp_path / "out.txt"
    with output.open("w") as out:
        done = subprocess.run([sys.executable, str(script)], stdout=out, timeout=60)
    ended = time.monotonic()
    holder, calling = output.read_text().split()
    try:
        assert done.returncode == 0
        assert ended - float(calling) < module.CHILDREN_WAIT_SECONDS + 1.5  # 2 s, not the holder's 30
    finally:
        os.kill(int(holder), signal.SIGKILL)

"""A new user's first run: the shipped instance config, a quiet import, the README's examples."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import dagster as dg
import pytest

from storemon_assets.local_servers import LOCAL_INSTANCE_CONFIG, REPO
from storemon_tests.helpers import run_storemon


def test_shipped_instance_turns_off_telemetry_the_first_visit_prompt_and_debug_console_lines(tmp_path):
    shutil.copyfile(LOCAL_INSTANCE_CONFIG, tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.telemetry_enabled is False
        assert instance.nux_enabled is False  # no "join the community" modal on the first visit
        assert instance.python_log_level == "INFO"  # runs print their summaries, not one line per event
    finally:
        instance.dispose()


def test_loading_the_definitions_prints_no_warning():
    """What the webserver, the daemon and every run do first: import the definitions. Dagster's
    beta warning for `backfill_policy` is filtered in defs/partitions.py, which both partitioned
    assets import."""
    done = subprocess.run(
        [sys.executable, "-c", "import storemon_assets.defs.definitions"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def readme_command(program: str) -> list[str]:
    """The README's example command line starting with `program` (continuation lines joined)."""
    text = (REPO / "README.md").read_text().replace("\\\n", " ")
    lines = [line.split("#")[0].strip().removeprefix(".venv/bin/") for line in text.splitlines()]
    return shlex.split(next(line for line in lines if line.startswith(program)))


def test_the_readme_storemon_report_example_runs_as_written(tmp_path, monkeypatch):
    command = readme_command("storemon report --status")
    out = command.index("--out") + 1
    assert command[out] == "sample-report.csv"
    command[out] = str(tmp_path / "report.csv")  # written here instead of into the checkout
    # In process (the command's parser, code and output; the README's walkthrough test, e2e, runs
    # the installed script), from the checkout as the README's relative paths expect.
    monkeypatch.chdir(REPO)
    done = run_storemon(*command[1:])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.csv").read_text().startswith("store_id,uptime_last_hour,")


def test_git_ignores_what_the_readme_examples_write():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(
        [
            "git",
            "check-ignore",
            "demo/store_status.csv",
            "report.csv",
            "sample-report.csv",
            "data/reports/combined_report.csv",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == [
        "demo/store_status.csv",
        "report.csv",
        "sample-report.csv",
        "data/reports/combined_report.csv",
    ]

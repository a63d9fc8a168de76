"""The README a newcomer follows: its command-line walkthrough runs as written, in order, from
a fresh checkout's point of view; it stays short; every page it links to is in the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from storemon_assets.local_servers import REPO

README = REPO / "README.md"
WALKTHROUGH_MARK = "<!-- walkthrough"

pytestmark = pytest.mark.e2e  # a dozen storemon processes, each importing polars and SQLAlchemy


def walkthrough() -> str:
    """The ```bash block right after the walkthrough mark."""
    text = README.read_text()
    after = text[text.index(WALKTHROUGH_MARK) :]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block is not None and after.index("```bash") < after.index("\n\n"), "the mark sits right before the block"
    return block.group(1)


def test_the_walkthrough_runs_as_written_in_a_fresh_home(tmp_path):
    """Run in a folder that looks like a fresh clone (the venv and the package at their places,
    no data), with the storemon home there, so nothing touches this checkout's data/."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "storemon_assets").symlink_to(REPO / "storemon_assets")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREMON_")} | {"STOREMON_HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    header = "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,downtime_last_hour"
    for report in ("report.csv", "report-earlier.csv", "sample-report.csv"):
        assert (tmp_path / report).read_text().startswith(header), report
    assert done.stdout.count(header) == 1  # `head -n 3 report.csv` showed it
    # The monitor's and history's CSVs, with SPEC 8 and 9's headers and a row per store at least
    # (200 generated stores, all polled in January 2023).
    for name, csv_header in (
        ("incidents.csv", "store_id,started_utc,ended_utc,downtime_minutes,open"),
        ("daily.csv", "store_id,date_local,business_minutes,uptime_minutes,downtime_minutes"),
        ("sla.csv", "store_id,month,business_hours,uptime_hours,downtime_hours,uptime_pct"),
    ):
        lines = (tmp_path / name).read_text().splitlines()
        assert lines[0] == csv_header, name
    assert len((tmp_path / "sla.csv").read_text().splitlines()) == 1 + 200
    # The two reports from the stored history differ: the earlier T is a day before.
    assert (tmp_path / "report.csv").read_text() != (tmp_path / "report-earlier.csv").read_text()
    assert sorted(p.name for p in (tmp_path / "data" / "landing").glob("*.csv")) == sorted(
        p.name for p in (REPO / "storemon_assets" / "sample_data").glob("*.csv")
    )  # `storemon sample` copied the sample into the home's landing folder


def test_the_walkthrough_uses_the_venv_and_nothing_outside_the_repository():
    commands = [line for line in walkthrough().splitlines() if line and not line.startswith(("#", " "))]
    assert all(line.startswith((".venv/bin/storemon ", "head ")) for line in commands), commands
    generate = next(i for i, line in enumerate(commands) if " generate " in line)
    ingest = next(i for i, line in enumerate(commands) if " ingest " in line)
    assert generate < ingest  # the data exists before it is loaded
    assert "../" not in README.read_text()


def test_the_readme_is_short_and_its_links_stay_in_the_repository():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local  # the check reads the links
    assert [link for link in local if not (REPO / link).exists()] == []

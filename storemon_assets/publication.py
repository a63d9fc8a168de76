"""Publishing the current report: `combined_report.csv` and the database's current report change
together or not at all, and only forward in T (SPEC §6). Also the files a report leaves in the
reports folder, and how they are cleaned up. docs/operations.md tells the same story for operators.

The order of a publication (`publish_report`):

1. The run's own copy, `<report_id>.csv`, is written (temporary name, then renamed).
2. The new `combined_report.csv` is written in full under a temporary name beside it.
3. One database transaction takes the current report's write lock and reads the published T. If
   it is newer than this report's, the transaction ends having changed nothing: the report stays
   a report of its own T, kept under its id (like an as-of report). Otherwise the current-report
   tables are replaced, the temporary file is renamed over `combined_report.csv` (the previous
   one kept under a second name, a hard link), and the transaction commits.
4. A failed commit puts the previous `combined_report.csv` back.

So a full disk fails step 1 or 2, before the database is touched, and every failure removes its
temporary file. A process killed at any point leaves one of: temporary files only (swept at the
next report run's start, `sweep_temporaries`); or, killed between the rename and the commit, a
`combined_report.csv` newer than the database, which `reconcile_combined_report` (also at the
next start) replaces with the database's current report, `<current report_id>.csv`. The rename
happens while the transaction holds the lock, so two publications cannot cross (an older T
renaming last).
"""

from __future__ import annotations

import filecmp
import glob
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from storemon_assets.core.uptime import report_csv
from storemon_assets.db.loading import CurrentReport, replace_current_report
from storemon_assets.db.queries import current_report_info
from storemon_assets.outputs import written_in_place

COMBINED_REPORT_NAME = "combined_report.csv"
SHARDS_FOLDER = ".shards"
# A temporary file is written and renamed within one step; one untouched for this long belongs to
# a process that was killed. Removing one still in use is harmless: its rename then fails, and a
# publication whose rename fails changes nothing (its transaction rolls back).
STALE_TEMPORARY_SECONDS = 300
_TEMPORARY = re.compile(r"^\.(.+)\.\d+\.(?:tmp|previous)$")


@dataclass(frozen=True)
class Publication:
    """What publishing a report did."""

    run_copy: Path  # `<report_id>.csv`, always written
    combined: Path  # `combined_report.csv`
    published: bool  # False: a newer report is published, which this one left alone
    published_as_of_us: int | None  # T of the report that is current afterwards


def temporary_name(target: Path, kind: str = "tmp") -> Path:
    """`.<name>.<pid>.tmp`: hidden, beside its target (same file system, so the rename is atomic),
    and one per process."""
    return target.with_name(f".{target.name}.{os.getpid()}.{kind}")


@contextmanager
def staged_text(target: Path, text: str) -> Iterator[Path]:
    """The text written in full under a temporary name beside `target`; the temporary file is
    removed on the way out unless it was renamed meanwhile (whatever ended the block)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(target)
    try:
        temporary.write_text(text)
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(text: str, target: Path) -> None:
    """Write a file so that readers never see it half-written (a temporary file, then a rename),
    and no temporary file stays behind when the write fails (a full disk). A target that is not
    a regular file is written in place (written_in_place)."""
    if written_in_place(target):
        target.write_text(text)
        return
    with staged_text(target, text) as temporary:
        temporary.replace(target)


def write_report_text(report: pl.DataFrame, target: Path) -> None:
    """Write the report CSV atomically (write_text_atomically)."""
    write_text_atomically(report_csv(report), target)


def publish_report(
    engine: sa.Engine, reports_dir: Path, current: CurrentReport | None, report: pl.DataFrame, report_id: str
) -> Publication:
    """Write the run's copy and, unless a newer report is published, make this the current
    report: `combined_report.csv` and the current-report tables, together (the module's order).

    `current` is None for a report without any poll (no T): it is published only when no report
    is, as the header-only CSV.
    """
    run_copy = reports_dir / f"{report_id}.csv"
    combined = reports_dir / COMBINED_REPORT_NAME
    write_report_text(report, run_copy)
    with staged_text(combined, report_csv(report)) as staged:
        previous = temporary_name(combined, "previous")
        switched = []  # whether the rename happened, and whether there was a CSV before it

        def switch_csv() -> None:
            had_one = combined.exists()
            if had_one:
                previous.unlink(missing_ok=True)
                os.link(combined, previous)
            staged.replace(combined)
            switched.append(had_one)

        try:
            if current is None:
                published = current_report_info(engine) is None
                if published:
                    switch_csv()
            else:
                published = replace_current_report(engine, current, before_commit=switch_csv)
        except BaseException:
            if switched:  # the rename happened, the commit did not: the CSV goes back
                if switched[0]:
                    previous.replace(combined)
                else:
                    combined.unlink(missing_ok=True)
            raise
        finally:
            previous.unlink(missing_ok=True)
    info = current_report_info(engine)
    return Publication(run_copy, combined, published, info["as_of_us"] if info else None)


def reconcile_combined_report(engine: sa.Engine, reports_dir: Path) -> bool:
    """Make `combined_report.csv` the database's current report again if a process killed between
    its rename and its commit left it ahead (step 3); True when it had to. The database is the
    record: its current report's own copy, `<report_id>.csv`, is what the CSV must hold."""
    info = current_report_info(engine)
    if info is None:
        return False
    combined = reports_dir / COMBINED_REPORT_NAME
    run_copy = reports_dir / f"{info['report_id']}.csv"
    if not run_copy.exists() or (combined.exists() and filecmp.cmp(run_copy, combined, shallow=False)):
        return False
    with staged_text(combined, run_copy.read_text()) as staged:
        staged.replace(combined)
    return True


def sweep_temporaries(folder: Path, target: str | None = None, now: float | None = None) -> list[Path]:
    """Remove the temporary files (`.<name>.<pid>.tmp`, `.<name>.<pid>.previous`) that killed
    processes left in `folder` (only those of the file named `target`, when given): the ones
    untouched for STALE_TEMPORARY_SECONDS. Returns them."""
    now = time.time() if now is None else now
    swept = []
    for path in folder.glob(f".{glob.escape(target)}.*" if target else ".*"):
        match = _TEMPORARY.match(path.name)
        if not match or (target and match.group(1) != target):
            continue
        try:
            if now - path.lstat().st_mtime >= STALE_TEMPORARY_SECONDS:
                path.unlink()
                swept.append(path)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue
    return swept


def sweep_reports_folder(
    engine: sa.Engine, folder: Path, run_group_has_ended: Callable[[str], bool | None]
) -> list[str]:
    """What runs killed or failed before left behind in the reports folder, swept at a report
    run's start; the names swept.

    Temporary files untouched for a while (sweep_temporaries); a `combined_report.csv` left ahead
    of the database by a run killed before its commit (reconcile_combined_report); and the
    intermediate files of every run whose run group has ended with no retry to come (sweep_shards).
    """
    swept = [path.name for path in sweep_temporaries(folder)]
    if reconcile_combined_report(engine, folder):
        swept.append(COMBINED_REPORT_NAME)
    return swept + sweep_shards(folder, run_group_has_ended)


def sweep_shards(folder: Path, run_group_has_ended: Callable[[str], bool | None]) -> list[str]:
    """Delete `.shards/<run id>/`, the intermediate step results, of every run whose run group has
    ended with no retry to come (`run_group_has_ended(run id)`); the names deleted. A retry of a
    run re-executed from its failure reads its parent's step results, so those stay while any run
    of the group may still need them. A run the instance does not know (None: deleted, or a run
    of another Dagster instance writing to the same folder, say a notebook's `materialize`) counts
    as ended once its folder is untouched for STALE_TEMPORARY_SECONDS. At a report run's start,
    and by the report_shards_sensor."""
    swept, now = [], time.time()
    for shards in sorted((folder / SHARDS_FOLDER).glob("*")):
        ended = run_group_has_ended(shards.name)
        if ended or (ended is None and now - shards.stat().st_mtime >= STALE_TEMPORARY_SECONDS):
            shutil.rmtree(shards, ignore_errors=True)
            swept.append(f"{SHARDS_FOLDER}/{shards.name}")
    return swept


def shard_folder(reports_folder: Path, run_id: str) -> Path:
    """Where a report run keeps its intermediate step results."""
    return reports_folder / SHARDS_FOLDER / run_id


def _step_result_stem(folder: Path, name: str) -> Path:
    return folder / re.sub(r"[^A-Za-z0-9_-]+", "_", name)


def write_step_result(folder: Path, name: str, value: object) -> None:
    """One step result of a report run, under `name` (made safe as a file name): a frame as Parquet
    (exact integers, typed), a small value as JSON. Written under a temporary name and renamed, so a
    step killed half-way never leaves a file a later step reads, nor (a full disk) a temporary one."""
    stem = _step_result_stem(folder, name)
    if not isinstance(value, pl.DataFrame):
        write_text_atomically(json.dumps(value), stem.with_name(stem.name + ".json"))
        return
    target = stem.with_name(stem.name + ".parquet")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(target)
    try:
        value.write_parquet(temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def read_step_result(folder: Path, name: str) -> object:
    """What `write_step_result` wrote under `name`."""
    stem = _step_result_stem(folder, name)
    frame = stem.with_name(stem.name + ".parquet")
    if frame.exists():
        return pl.read_parquet(frame)
    return json.loads(stem.with_name(stem.name + ".json").read_text())

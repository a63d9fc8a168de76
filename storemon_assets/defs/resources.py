"""Dagster resources: the database, the landing folder and the reports folder.

Each one is configuration plus a few methods; swapping SQLite for PostgreSQL is a different
`url`. Defaults come from the STOREMON_* environment variables (see settings.py).
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import dagster as dg
import polars as pl
import sqlalchemy as sa

from storemon_assets import settings
from storemon_assets.core.parsing import FeedFileError
from storemon_assets.db.engine import create_db_engine, create_tables
from storemon_assets.publication import (
    COMBINED_REPORT_NAME,
    SHARDS_FOLDER,
    reconcile_combined_report,
    sweep_temporaries,
)

# Dagster's tag on a failed run that its run retries will re-execute ("true") or not.
WILL_RETRY_TAG = "dagster/will_retry"


@lru_cache(maxsize=8)
def _engine_for(url: str) -> sa.Engine:
    engine = create_db_engine(url)
    create_tables(engine)
    return engine


class StoremonDatabase(dg.ConfigurableResource):
    """The storemon database (SQLAlchemy URL: SQLite by default, PostgreSQL supported)."""

    url: str

    def engine(self) -> sa.Engine:
        return _engine_for(self.url)

    @property
    def display_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class LandingFile:
    """A regular file directly inside the landing folder, as `stat` saw it."""

    path: Path
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def identity(self) -> str:
        """Changes whenever the file is rewritten, extended, touched or replaced. Size and
        modification time alone can be put back as they were (`touch -r`, `rsync -t`, a copy
        keeping times): a file replaced that way has another inode, or a later status-change
        time (ctime), which no program can set back."""
        return f"{self.mtime_ns}-{self.size}-{self.inode}-{self.ctime_ns}"


class NotALandingFile(FeedFileError):
    """A path that is not a regular file inside the landing folder; it is refused unread."""


class LandingFolder(dg.ConfigurableResource):
    """Where new CSV files of any of the three kinds arrive; unreadable ones are moved aside.

    The folder is a boundary: only regular files directly inside it are read. A symbolic link
    (wherever it points), a FIFO or anything else is refused without being opened.

    A file is taken only once it is complete: unchanged for `settle_seconds` and ending with a
    newline, or, without one, unchanged for `last_line_settle_seconds` (the real feed's own file
    has no final newline). A writer that pauses mid-line for less than that is waited for, so a
    half-written last line is never loaded as a poll (writers should still write `name.csv.part`
    and rename it when done). An empty file still empty after `incomplete_after_seconds` is moved
    aside, so it cannot wait unseen forever.
    """

    path: str
    settle_seconds: float = 2.0
    last_line_settle_seconds: float = 30.0
    incomplete_after_seconds: float = 600.0

    @property
    def folder(self) -> Path:
        return Path(self.path)

    @property
    def failed_folder(self) -> Path:
        return self.folder / "failed"

    def scan(self) -> tuple[list[LandingFile], list[Path]]:
        """(regular `*.csv` files in arrival order, `*.csv` entries refused as not regular files).

        `lstat` only: a symbolic link is never followed, so nothing outside the folder is read.
        """
        if not self.folder.is_dir():
            return [], []
        files, refused = [], []
        for entry in os.scandir(self.folder):
            if not entry.name.lower().endswith(".csv"):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone since the folder was listed
            if stat.S_ISREG(info.st_mode):
                files.append(
                    LandingFile(Path(entry.path), info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)
                )
            else:
                refused.append(Path(entry.path))
        return sorted(files, key=lambda f: (f.mtime_ns, f.name)), sorted(refused)

    def csv_files(self) -> list[Path]:
        return sorted(f.path for f in self.scan()[0])

    def is_settled(self, file: LandingFile, now: float | None = None) -> bool:
        """Not modified within the last `settle_seconds`."""
        now = time.time() if now is None else now
        return now - file.mtime_ns / 1e9 >= self.settle_seconds

    def is_complete(self, file: LandingFile, now: float | None = None) -> bool:
        """Not empty, and its last byte is a newline or it has not changed for
        `last_line_settle_seconds`: a file whose last line is unfinished may still be written."""
        if file.size == 0:
            return False
        if self._unchanged_for(file.mtime_ns, now) >= self.last_line_settle_seconds:
            return True
        with self._open(file.path) as handle:
            handle.seek(file.size - 1)
            return handle.read(1) == b"\n"

    def is_stalled(self, file: LandingFile, now: float | None = None) -> bool:
        """Still empty after `incomplete_after_seconds`: nobody is writing it."""
        return self._unchanged_for(file.mtime_ns, now) >= self.incomplete_after_seconds

    @staticmethod
    def _unchanged_for(mtime_ns: int, now: float | None = None) -> float:
        return (time.time() if now is None else now) - mtime_ns / 1e9

    def head(self, file: LandingFile, head_bytes: int = 64 * 1024) -> bytes:
        """The first `head_bytes` of a file: enough to recognise its feed, whatever its size."""
        with self._open(file.path) as handle:
            return handle.read(head_bytes)

    def read_complete(self, path: Path) -> bytes | None:
        """A file's bytes if it is complete (see `is_complete`) as it is read, else None (also when
        it is gone); refused unread unless it is a regular file directly in the folder."""
        try:
            opened = self._open(path)
        except FileNotFoundError:
            return None
        with opened as handle:
            mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
            data = handle.read()
        complete = data.endswith(b"\n") or self._unchanged_for(mtime_ns) >= self.last_line_settle_seconds
        return data if data and complete else None

    def holds(self, path: Path) -> bool:
        """Whether `path` names an entry directly inside the landing folder (not resolved)."""
        return Path(os.path.abspath(path)).parent == Path(os.path.abspath(self.folder))

    def _open(self, path: Path):
        if not self.holds(path):
            raise NotALandingFile(f"{path.name}: refused unread, not directly inside the landing folder")
        try:  # O_NOFOLLOW: a symbolic link fails to open instead of being followed
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotALandingFile(f"{path.name}: refused unread, a symbolic link") from exc
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotALandingFile(f"{path.name}: refused unread, not a regular file")
        return os.fdopen(fd, "rb")

    def move_aside(self, path: Path, error: str) -> Path:
        """Move a file that failed ingestion to failed/, with its error in `<name>.error.txt`.
        A symbolic link is moved as a link: its target is neither read nor touched.

        Nothing in failed/ is ever overwritten (it may hold the only copy of a delivery): a name
        already taken there, by a file, a folder or an error text, gets the time it was moved
        aside, `d.20261206T071502Z.csv`, then a counter, `d.20261206T071502Z-2.csv`.
        """
        self.failed_folder.mkdir(parents=True, exist_ok=True)
        target = self._free_failed_name(path.name)
        if os.path.lexists(path):
            path.rename(target)  # a rename never replaces a folder, nor (checked above) a file
        target.with_name(target.name + ".error.txt").write_text(error + "\n")
        return target

    def _free_failed_name(self, name: str) -> Path:
        """`name` in failed/, or the first free one of its time-stamped forms."""
        stem, dot, suffix = name.rpartition(".")
        stem, suffix = (stem, dot + suffix) if stem else (name, "")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        candidates = itertools.chain(
            [name, f"{stem}.{stamp}{suffix}"], (f"{stem}.{stamp}-{n}{suffix}" for n in itertools.count(2))
        )
        for candidate in candidates:
            target = self.failed_folder / candidate
            if not os.path.lexists(target) and not os.path.lexists(target.with_name(candidate + ".error.txt")):
                return target
        raise AssertionError("unreachable: the counter is endless")


class ReportsFolder(dg.ConfigurableResource):
    """Where `combined_report.csv` and each run's `<run id>.csv` are written."""

    path: str

    @property
    def folder(self) -> Path:
        return Path(self.path)

    def report_path(self, report_id: str) -> Path:
        return self.folder / f"{report_id}.csv"

    def shard_folder(self, run_id: str) -> Path:
        return shard_folder(self.folder, run_id)

    def discard_shards(self, run_id: str) -> None:
        """Delete a run's intermediate files (its report was published, or failed for good)."""
        shutil.rmtree(self.shard_folder(run_id), ignore_errors=True)

    def sweep(self, instance: dg.DagsterInstance, engine: sa.Engine) -> list[str]:
        """What runs killed or failed before left behind, swept at a report run's start (names).

        Temporary files untouched for a while (publication.sweep_temporaries); a
        `combined_report.csv` left ahead of the database by a run killed before its commit
        (publication.reconcile_combined_report); and the intermediate files of every run whose
        run group has ended with no retry to come. A retry of a run re-executed from its failure
        reads its parent's step results, so those stay while any run of the group may still
        need them.
        """
        swept = [path.name for path in sweep_temporaries(self.folder)]
        if reconcile_combined_report(engine, self.folder):
            swept.append(COMBINED_REPORT_NAME)
        for folder in sorted((self.folder / SHARDS_FOLDER).glob("*")):
            if _run_group_has_ended(instance, folder.name):
                self.discard_shards(folder.name)
                swept.append(f"{SHARDS_FOLDER}/{folder.name}")
        return swept


def _run_group_has_ended(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether no run of `run_id`'s group is going on or will be retried (True for a run the
    instance does not know)."""
    try:
        group = instance.get_run_group(run_id)
    except dg.DagsterRunNotFoundError:
        return True
    if group is None:
        return True
    return all(run.is_finished and run.tags.get(WILL_RETRY_TAG) != "true" for run in group[1])


def shard_folder(reports_folder: Path, run_id: str) -> Path:
    """Where a report run keeps its intermediate step results (ReportShardsIOManager)."""
    return reports_folder / SHARDS_FOLDER / run_id


class ReportShardsIOManager(dg.ConfigurableIOManager):
    """Keeps the report's intermediate step results (the shard plan, each shard's exact sums) as
    files under `<reports folder>/.shards/<run id>/`, where every step can read them: the reports
    folder is the one place every worker already shares (it publishes `combined_report.csv`), not
    Dagster's default storage on the local disk of whichever machine ran the step.

    Frames are Parquet (exact integers, typed); small values JSON. Each file is written under a
    temporary name and renamed, so a step killed half-way never leaves a file a later step reads.
    """

    reports_path: str  # the ReportsFolder's path (a plain value, so sensors' contexts can hold it)

    def _stem(self, context: dg.OutputContext) -> Path:
        """`<run folder>/<step key>__<output>[__<mapping key>]`, made safe as a file name."""
        run_id, *names = context.get_identifier()
        return shard_folder(Path(self.reports_path), run_id) / re.sub(r"[^A-Za-z0-9_-]+", "_", "__".join(names))

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        stem = self._stem(context)
        stem.parent.mkdir(parents=True, exist_ok=True)
        temporary = stem.with_name(f".{stem.name}.{os.getpid()}.tmp")
        try:  # a failed write (a full disk) leaves no half-written temporary file
            if isinstance(obj, pl.DataFrame):
                obj.write_parquet(temporary)
                temporary.replace(stem.with_name(stem.name + ".parquet"))
            else:
                temporary.write_text(json.dumps(obj))
                temporary.replace(stem.with_name(stem.name + ".json"))
        finally:
            temporary.unlink(missing_ok=True)

    def load_input(self, context: dg.InputContext):
        stem = self._stem(context.upstream_output)
        frame = stem.with_name(stem.name + ".parquet")
        if frame.exists():
            return pl.read_parquet(frame)
        return json.loads(stem.with_name(stem.name + ".json").read_text())


def default_resources() -> dict[str, dg.ConfigurableResource]:
    # A URL set in the environment reaches Dagster as an EnvVar, read when a run starts, so a
    # password in it is never stored in run config or shown in the UI.
    database_url = (
        dg.EnvVar(settings.DATABASE_URL.name) if settings.is_set(settings.DATABASE_URL) else settings.database_url()
    )
    reports = ReportsFolder(path=str(settings.reports_dir()))
    return {
        "database": StoremonDatabase(url=database_url),
        "landing": LandingFolder(
            path=str(settings.landing_dir()), last_line_settle_seconds=settings.last_line_settle_seconds()
        ),
        "reports": reports,
        REPORT_SHARDS_IO_MANAGER: ReportShardsIOManager(reports_path=reports.path),
    }


REPORT_SHARDS_IO_MANAGER = "report_shards_io_manager"

"""The landing folder's rules, in plain Python: which entries are read (regular files directly
inside it, nothing else is even opened), when a file is complete enough to load, and where the
ones that cannot be ingested go (`failed/`, each with its error beside it).

`LandingFolderRules` holds them; the Dagster resource `LandingFolder` (defs/resources.py) is these
rules plus their configuration, and the landing sensor and the ingest asset call them.

A tick of the landing sensor (`LandingFolderRules.tick`) does bounded work per entry: `stat`, the
last byte and the first 64 KiB (to recognise the feed), whatever the file's size; content hashes
are taken by the run, where the ledger decides what is new. A file is handed to a run once it is
complete (settled, ending with a newline or unchanged long enough without one) and this version of
it was not handed before. Runs take a bounded amount of data (core/ingest_batches.py) and one runs
at a time, so a backlog drains over several runs.

Retries are Dagster's: the ingest step retries transient database errors itself, with backoff
(defs/raw.py), and the instance re-runs a run whose worker was lost (`run_retries` in
dagster.yaml; the retry keeps the batch's tags). A batch whose last run ended for good
(run_retries.ended_for_good) having failed or been canceled has its files that are still
waiting, unchanged and not loaded by any of its runs moved to failed/ with the run's error. Files
that cannot be read (unknown header, symbolic links, folders, files still empty after a while) go
there at once. Everything in failed/ fails the `no_unreadable_files` check of `landing_folder`.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import itertools
import json
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from storemon_assets.core.ingest_batches import choose_batch
from storemon_assets.core.parsing import FeedFile, FeedFileError, header_kind
from storemon_assets.core.quality import Finding
from storemon_assets.core.summaries import markdown_list
from storemon_assets.run_retries import ended_for_good

# What one ingest run takes (core/ingest_batches.py): at most this many files, small ones up to
# this many bytes in all; a larger file goes alone beside them.
MAX_FILES_PER_RUN = 100
MAX_RUN_BYTES = 256 * 2**20
REFUSED = (
    "refused unread: not a regular file (a symbolic link, a folder or a device); only regular files "
    "directly inside the landing folder are read"
)


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


class LandingFolderRules:
    """Where new CSV files of any of the four kinds arrive; unreadable ones are moved aside.

    Reads `path`, `settle_seconds`, `last_line_settle_seconds` and `incomplete_after_seconds` from
    the object it is mixed into (the resource declares them, with their defaults).

    The folder is a boundary: only regular files directly inside it are read. A symbolic link
    (wherever it points), a FIFO or anything else is refused without being opened.

    A file is taken only once it is complete: unchanged for `settle_seconds` and ending with a
    newline, or, without one, unchanged for `last_line_settle_seconds` (the real feed's own file
    has no final newline). A writer that pauses mid-line for less than that is waited for, so a
    half-written last line is never loaded as a poll (writers should still write `name.csv.part`
    and rename it when done). An empty file still empty after `incomplete_after_seconds` is moved
    aside, so it cannot wait unseen forever.
    """

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

    def open_complete(self, path: Path) -> FeedFile | None:
        """The file opened as a feed (its header read, its bytes hashed, nothing kept: see
        FeedFile) if it is complete (see `is_complete`) as it is looked at, else None (also when
        it is gone); refused unread unless it is a regular file directly in the folder. Only the
        bytes it had then are read, then and when it is loaded."""
        try:
            opened = self._open(path)
        except FileNotFoundError:
            return None
        with opened as handle:
            info = os.fstat(handle.fileno())
            if info.st_size == 0:
                return None
            handle.seek(info.st_size - 1)
            ends_with_newline = handle.read(1) == b"\n"
        if not ends_with_newline and self._unchanged_for(info.st_mtime_ns) < self.last_line_settle_seconds:
            return None
        try:
            return FeedFile(path, opener=self._open, size=info.st_size)
        except FeedFileError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return None  # gone since
            raise

    def holds(self, path: Path) -> bool:
        """Whether `path` names an entry directly inside the landing folder (not resolved). A `..`
        beyond the folder never does: the system resolves it after any symbolic link on the way
        (`sub/../x.csv`, with `sub` a link, can be a file anywhere)."""
        path = Path(path)
        beyond = path.relative_to(self.folder).parts if path.is_relative_to(self.folder) else path.parts
        return ".." not in beyond and Path(os.path.abspath(path)).parent == Path(os.path.abspath(self.folder))

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

    def move_aside(self, path: Path, error: str) -> Path | None:
        """Move a file that failed ingestion to failed/, with its error in `<name>.error.txt`.
        A symbolic link is moved as a link: its target is neither read nor touched. A path not
        directly inside the landing folder was never delivered there: it stays where it is (None).

        Nothing in failed/ is ever overwritten (it may hold the only copy of a delivery): a name
        already taken there, by a file, a folder or an error text, gets the time it was moved
        aside, `d.20261206T071502Z.csv`, then a counter, `d.20261206T071502Z-2.csv`.
        """
        if not self.holds(path):
            return None
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

    def move_aside_unloaded(self, cursor: LandingCursor, files: list[LandingFile], reason: str) -> list[str]:
        """Move aside the files of a batch that failed for good which none of its runs loaded, each
        with `<name>: <reason>`, and forget them as handed over (a new delivery is a new file)."""
        moved = []
        for file in files:
            moved.append(f"{file.name}: {reason}")
            self.move_aside(file.path, moved[-1])
            del cursor.handed[file.name]
        return moved

    def tick(
        self,
        cursor: LandingCursor,
        states: dict[str, BatchState],
        failure_of: Callable[[str], tuple[set[str], str]],
    ) -> LandingTick:
        """One look at the folder, the landing sensor's tick: entries that are not regular files
        are refused; the cursor's batches are settled by `states` (settle_batches); of a batch
        that failed for good, the files none of its runs loaded are moved aside with why it
        failed (`failure_of(run key)`: the names its runs loaded, the reason; asked only then);
        unreadable files are moved aside (ready_files); batches whose run Dagster has not
        created yet are asked for again, and, when no batch is going, the next one is handed out
        (one run at a time, so a backlog drains over several runs)."""
        files, refused = self.scan()
        moved = self.refuse(refused)
        present = {f.name: f for f in files}
        cursor.handed = {n: i for n, i in cursor.handed.items() if n in present}
        settlement = settle_batches(cursor, present, states)
        for key, names in settlement.failed.items():
            loaded, reason = failure_of(key)
            moved += self.move_aside_unloaded(cursor, [present[n] for n in names if n not in loaded], reason)
        ready, unreadable = self.ready_files(files, cursor.handed)
        requests = {key: [present[n] for n in names] for key, names in settlement.without_run.items()}
        if not settlement.in_flight and not requests:
            key, batch = cursor.hand_out(ready, MAX_RUN_BYTES, MAX_FILES_PER_RUN)
            if batch:
                requests[key] = batch
        return LandingTick(moved + unreadable, requests)

    def refuse(self, refused: list[Path]) -> list[str]:
        """Move entries that are not regular files to failed/, unread; their messages."""
        moved = []
        for path in refused:
            moved.append(f"{path.name}: {REFUSED}")
            self.move_aside(path, moved[-1])
        return moved

    def ready_files(self, files: list[LandingFile], handed: dict[str, str]) -> tuple[list[LandingFile], list[str]]:
        """Complete files whose current version (identity) is not in `handed`, oldest first, and
        the messages of those moved aside as unreadable. Bounded work per file: its last byte
        and first 64 KiB, whatever its size."""
        ready, moved = [], []
        for file in files:
            if handed.get(file.name) == file.identity or not self.is_settled(file):
                continue
            try:
                if self._examine(file):
                    ready.append(file)
            except FileNotFoundError:
                continue  # gone since the folder was listed
            except (FeedFileError, OSError) as exc:  # unreadable (permissions, say): one file, not the tick
                message = str(exc if isinstance(exc, FeedFileError) else FeedFileError.unreadable(file.name, exc))
                self.move_aside(file.path, message)
                moved.append(message)
        return ready, moved

    def _examine(self, file: LandingFile) -> bool:
        """Whether a file is complete with a known header (False while it may still be written).
        Raises FeedFileError for a file to move aside."""
        if not self.is_complete(file):
            if file.size == 0 and self.is_stalled(file):
                raise FeedFileError(
                    f"{file.name}: empty and unchanged for {self.incomplete_after_seconds:g} s; "
                    "if it is complete, drop it again with its header and rows"
                )
            return False
        head = self.head(file)
        header_kind(head, file.name, whole_file=file.size <= len(head))
        return True

    def failed_files(self) -> dict[str, str]:
        """The files waiting in failed/, each with its error."""
        return {
            p.name.removesuffix(".error.txt"): p.read_text().strip()
            for p in sorted(self.failed_folder.glob("*.error.txt"))
        }

    def failed_finding(self) -> Finding:
        """The `no_unreadable_files` check's verdict: passes while failed/ is empty; otherwise
        says what to do. `details["files"]`: each waiting file and its error (failed_files())."""
        errors = self.failed_files()
        details = {"files": markdown_list(f"`{name}`: {error}" for name, error in errors.items())}
        if not errors:
            return Finding(True, "no unreadable files", details)
        summary = (
            f"{len(errors)} file(s) could not be ingested and wait in {self.failed_folder}: fix and drop them "
            "into the landing folder again, then delete them from failed/"
        )
        return Finding(False, summary, details)


@dataclass
class LandingCursor:
    """The landing sensor's cursor: what only the sensor can know; Dagster keeps everything else (runs, retries, outcomes).

    `handed`: the version (identity) of each file last handed to a run. Files stay in the
    folder after loading, and Dagster knows runs, not versions of files: without this every
    tick would hand the whole folder over again.
    `batches`: the files of each batch (by run key) until its runs have settled, so that a
    batch whose run Dagster has not created yet is asked for again (a run key already
    launched is skipped), and one whose runs failed for good has its files moved aside.
    """

    handed: dict[str, str] = field(default_factory=dict)
    batches: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> LandingCursor:
        data = json.loads(text) if text else {}
        if data.get("version") != 3:  # an older cursor: look at every file again (the ledger decides)
            return cls()
        return cls(data["handed"], data["batches"])  # (a "feeds" of older code: the stores sensor's now)

    def dump(self) -> str:
        return json.dumps({"version": 3, "handed": self.handed, "batches": self.batches}, sort_keys=True)

    def hand_out(self, ready: list[LandingFile], max_bytes: int, max_files: int) -> tuple[str, list[LandingFile]]:
        """The next batch of the ready files (core/ingest_batches.choose_batch: oldest first, bounded)
        and its run key, recorded as handed over; no files when none is ready."""
        by_name = {f.name: f for f in ready}
        batch = [by_name[n] for n in choose_batch([(f.name, f.size) for f in ready], max_bytes, max_files)]
        if not batch:
            return "", []
        key = batch_key(batch)
        self.batches[key] = [f.name for f in batch]
        self.handed.update({f.name: f.identity for f in batch})
        return key, batch


def batch_key(files: list[LandingFile]) -> str:
    """The run key of a batch: the same versions of the same files, the same key (Dagster skips
    a run key it has launched already)."""
    versions = sorted(f"{f.name}:{f.identity}" for f in files)
    return "ingest-" + hashlib.sha256(" ".join(versions).encode()).hexdigest()


class BatchState(enum.Enum):
    """Where a batch's runs stand, from the last of them (Dagster keeps the runs)."""

    NO_RUN = "no run yet"  # asked for, not created yet: ask again
    IN_FLIGHT = "queued, running, or failed with a re-run coming"
    SUCCEEDED = "its last run succeeded"
    FAILED = "its last run failed for good or was canceled"

    @classmethod
    def of_last_run(
        cls, status: str, tags: Mapping[str, str], retries_enabled: bool, ended_at: float | None
    ) -> BatchState:
        """A batch's state from its newest run: Dagster's status name, its tags, whether the
        instance has run retries on, when it ended (run_retries.ended_for_good)."""
        if not ended_for_good(status, tags, retries_enabled, ended_at):
            return cls.IN_FLIGHT
        return cls.SUCCEEDED if status == "SUCCESS" else cls.FAILED


@dataclass(frozen=True)
class LandingTick:
    """What one tick decided (LandingFolderRules.tick)."""

    moved: list[str]  # the messages of the entries moved to failed/
    requests: dict[str, list[LandingFile]]  # run key -> its files: batches asked for again, or the next one


@dataclass
class Settlement:
    """What the batches' states mean for this tick of the landing sensor."""

    in_flight: bool = False  # a batch is still going: no new batch is handed out (one run at a time)
    without_run: dict[str, list[str]] = field(default_factory=dict)  # batch key -> files to ask a run for again
    failed: dict[str, list[str]] = field(default_factory=dict)  # batch key -> files to move aside unless loaded


def settle_batches(cursor: LandingCursor, present: dict[str, LandingFile], states: dict[str, BatchState]) -> Settlement:
    """Settle the cursor's batches by the state of their runs (a key missing from `states` has no
    run). Settled batches leave the cursor. Of a batch that failed for good, the files named for
    moving aside are those still present and unchanged since they were handed over: a file the run
    moved aside, or deleted, is gone, and a changed one is looked at afresh as a new version."""
    settlement = Settlement()
    for key, names in list(cursor.batches.items()):
        state = states.get(key, BatchState.NO_RUN)
        if state is BatchState.NO_RUN:
            waiting = [n for n in names if n in present]
            if waiting:
                settlement.without_run[key] = waiting
            else:
                del cursor.batches[key]  # all gone before the run was created
        elif state is BatchState.IN_FLIGHT:
            settlement.in_flight = True
        else:
            del cursor.batches[key]
            if state is BatchState.FAILED:
                settlement.failed[key] = [
                    n for n in names if n in present and present[n].identity == cursor.handed.get(n)
                ]
    return settlement

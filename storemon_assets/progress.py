"""Progress of long work: one line per phase, with its counts and time, and a bar on a
terminal while a phase that reports its advance takes more than a second.

The service and the loader report through a `Progress`; the command line prints it on stderr
(`--quiet` turns it off) and the Dagster assets send the same lines to the run's log.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

BAR_WIDTH = 30
BAR_AFTER_SECONDS = 1.0


class Phase:
    """One running phase: set `detail` to what it did; call `advance` as work gets done."""

    def __init__(self, progress: Progress, label: str):
        self.progress = progress
        self.label = label
        self.detail = ""
        self.started = time.perf_counter()

    def advance(self, done: int, total: int) -> None:
        self.progress.draw_bar(self, done, total)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


class Progress:
    """Phase lines to `emit` (nothing when None); a bar on `bar_stream` if it is a terminal."""

    def __init__(self, emit: Callable[[str], None] | None = None, bar_stream: TextIO | None = None):
        self.emit = emit
        self.bar_stream = bar_stream if bar_stream is not None and bar_stream.isatty() else None
        self._bar_shown = False

    @classmethod
    def to_stderr(cls, quiet: bool = False) -> Progress:
        if quiet:
            return cls()
        return cls(lambda line: print(line, file=sys.stderr, flush=True), sys.stderr)

    @contextmanager
    def phase(self, label: str) -> Iterator[Phase]:
        phase = Phase(self, label)
        yield phase
        self._clear_bar()
        if self.emit:
            self.emit(
                f"{label}: {phase.detail} ({phase.seconds:.2f} s)"
                if phase.detail
                else f"{label} ({phase.seconds:.2f} s)"
            )

    def draw_bar(self, phase: Phase, done: int, total: int) -> None:
        if self.bar_stream is None or total <= 0 or phase.seconds < BAR_AFTER_SECONDS:
            return
        filled = BAR_WIDTH * min(done, total) // total
        self.bar_stream.write(f"\r{phase.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:,}/{total:,}")
        self.bar_stream.flush()
        self._bar_shown = True

    def _clear_bar(self) -> None:
        if self._bar_shown and self.bar_stream is not None:
            self.bar_stream.write("\r\x1b[K")
            self.bar_stream.flush()
            self._bar_shown = False


QUIET = Progress()


def peak_rss_mib() -> float:
    """This process's peak resident memory: a Dagster step's own under the multiprocess and Celery
    executors (one process per step), the whole run's so far in process."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

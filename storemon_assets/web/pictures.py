"""Store pictures (timeline.svg) kept per (report, store), and a bound on drawing at once.

A picture depends only on the current report and the store, and the report changes only when
one is published: each is drawn once per report. Drawing takes a worker thread (matplotlib
draws one at a time anyway); without a bound, 60 requests for different pictures at once held
every thread of FastAPI's pool waiting for their turn, and `/summary` waited behind them
(docs/performance.md). Requests for pictures now wait for a drawing slot on the event loop, holding no thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import anyio
from fastapi.concurrency import run_in_threadpool

MAX_PICTURES = 1000  # at 10-40 KB each, tens of MB at most
DRAWING_AT_ONCE = 2  # one drawing, one reading its store's rows


class TimelinePictures:
    """The pictures of the current report, by store; the least recently used beyond `entries` go,
    and all of them when a picture of another report is kept (a new report was published)."""

    def __init__(self, entries: int = MAX_PICTURES, drawing_at_once: int = DRAWING_AT_ONCE):
        self.entries = entries
        self.drawing_at_once = drawing_at_once
        self._pictures: OrderedDict[str, bytes] = OrderedDict()
        self._report_id: str | None = None
        self._lock = threading.Lock()
        self._slots: anyio.Semaphore | None = None  # made on the event loop, at first use

    async def get_or_draw(self, report_id: str, store_id: str, draw: Callable[[], bytes]) -> bytes:
        """The store's picture of this report: kept, or drawn by `draw` (in a worker thread, once a
        drawing slot is free). An exception of `draw` (an unknown store) is raised, nothing kept."""
        picture = self._get(report_id, store_id)
        if picture is not None:
            return picture
        if self._slots is None:
            self._slots = anyio.Semaphore(self.drawing_at_once)
        async with self._slots:
            picture = self._get(report_id, store_id)  # drawn meanwhile by a request for the same store
            if picture is None:
                picture = await run_in_threadpool(draw)
                self._keep(report_id, store_id, picture)
        return picture

    def _get(self, report_id: str, store_id: str) -> bytes | None:
        with self._lock:
            if report_id != self._report_id:
                return None
            picture = self._pictures.get(store_id)
            if picture is not None:
                self._pictures.move_to_end(store_id)
            return picture

    def _keep(self, report_id: str, store_id: str, picture: bytes) -> None:
        with self._lock:
            if report_id != self._report_id:
                self._pictures.clear()
                self._report_id = report_id
            self._pictures[store_id] = picture
            while len(self._pictures) > self.entries:
                self._pictures.popitem(last=False)

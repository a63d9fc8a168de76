"""The storemon database as the API's pages read it: opened when first needed, never created.

The pages only read what report runs published. A SQLite file is opened with `mode=rw`
(db/engine.py `open_existing_database`), so a database that is missing stays missing: the pages
answer 503 saying so, instead of a new empty file answering "no such table" (seen: 573 of 1,018
requests after the file was deleted under a running API). Each request looks at the file first:
deleted, the engine is dropped (its open connections would go on reading the deleted file);
replaced by another file, the engine is opened anew on it.
"""

from __future__ import annotations

import threading
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from storemon_assets.db.engine import NOT_LOADED_YET, DatabaseUnavailable, open_existing_database, sqlite_file


class ReaderDatabase:
    """The pages' engine for `url`, or `given` as it is (tests, an embedding application)."""

    def __init__(self, url: str, given: sa.Engine | None = None):
        self.url = url
        self.given = given
        self._engine: sa.Engine | None = None
        self._file_identity: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def engine(self) -> sa.Engine:
        """The engine, (re)opened as the file requires; raises DatabaseUnavailable (one line)."""
        if self.given is not None:
            return self.given
        path = sqlite_file(self.url)
        with self._lock:
            if path is not None:
                try:
                    found = path.stat()
                except FileNotFoundError:
                    self._close()
                    raise DatabaseUnavailable(NOT_LOADED_YET) from None
                if self._file_identity not in (None, (found.st_dev, found.st_ino)):
                    self._close()  # another file now: open that one
                self._file_identity = (found.st_dev, found.st_ino)
            if self._engine is None:
                self._engine = open_existing_database(self.url)
            return self._engine

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._file_identity = None


def _opened(request: Request) -> sa.Engine | DatabaseUnavailable:
    """The engine, or why there is none. Both dependencies below take this one, which FastAPI
    calls once per request: a protected page looks at the file once, not once for the token
    check and again for its rows."""
    try:
        return request.app.state.database.engine()
    except DatabaseUnavailable as exc:
        return exc


_Opened = Annotated[sa.Engine | DatabaseUnavailable, Depends(_opened)]


def store_database(opened: _Opened) -> sa.Engine:
    """Dependency: the storemon database engine (never created here; missing or unreadable, the
    app answers 503 saying so). The store pages take it."""
    if isinstance(opened, DatabaseUnavailable):
        raise opened
    return opened


Database = Annotated[sa.Engine, Depends(store_database)]


def database_if_any(opened: _Opened) -> sa.Engine | None:
    """Dependency: the engine, or None while there is no readable database yet (then no token
    exists either: the token check and the trigger go on without it)."""
    return None if isinstance(opened, DatabaseUnavailable) else opened


DatabaseIfAny = Annotated[sa.Engine | None, Depends(database_if_any)]

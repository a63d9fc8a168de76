"""The app: its routers, the state they share, and what bounds every request.

`create_app` builds the FastAPI app; its lifespan opens the storemon database (schema upgraded)
at start-up, so the first page does not pay for it and a wrong database URL shows at once, and
closes it and the connections to Dagster at shutdown. The database is never created here
(web/database.py): missing, deleted or unreadable, the pages answer 503 with a one-line reason. Request bodies are limited to
MAX_BODY_BYTES, and no answer echoes more than a short excerpt of what it was sent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from storemon_assets import settings
from storemon_assets.api import reports
from storemon_assets.api.runs import DagsterRuns, FinishedRuns
from storemon_assets.api.triggers import TriggerDesk
from storemon_assets.core.parsing import EXCERPT_CHARS, excerpt
from storemon_assets.db.engine import DatabaseUnavailable, unreadable
from storemon_assets.web.access import CrossSiteGuard, SecurityHeaders, TokenAuthority
from storemon_assets.web.database import ReaderDatabase
from storemon_assets.web.monitor import router as monitor_pages
from storemon_assets.web.pictures import TimelinePictures
from storemon_assets.web.routes import public_router
from storemon_assets.web.routes import router as store_pages

logger = logging.getLogger("storemon.api")
MAX_BODY_BYTES = 16 * 1024  # a trigger body is a few dozen bytes


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the storemon database for the store pages at start-up, so the first page does not pay
    for it and a wrong URL shows at once; a database not there yet is not an error (the pages say
    503 until it is). Close the database and the connections to Dagster when the app stops."""
    state = app.state
    try:
        await run_in_threadpool(state.database.engine)
    except DatabaseUnavailable as exc:
        logger.warning(f"store pages: {exc}")
    try:
        yield
    finally:
        state.report_runs.close()
        state.database.close()


def create_app(
    dagster_url: str | None = None,
    reports_dir: Path | None = None,
    database_url: str | None = None,
    engine: sa.Engine | None = None,
    listen_host: str = "127.0.0.1",
) -> FastAPI:
    """The storemon API: reports through Dagster (api/reports.py), the store pages and the web
    page from the storemon database (web/routes.py). Unset arguments come from the settings;
    `engine`, if given, is used as it is (and left open). `listen_host` is the address served:
    on any but loopback every protected route needs a token (SPEC §10, web/access.py)."""
    # FastAPIOffline: FastAPI whose /docs and /redoc load Swagger UI and ReDoc from files the
    # package ships (under /static-offline-docs), not from a CDN: the pages work offline.
    app = FastAPIOffline(
        redirect_slashes=False,  # `/summary/` is answered, never a 307 with an empty body (aliases)
        title="storemon",
        version="0.1.0",
        description="Trigger an uptime report (a Dagster run) and poll for its CSV; see the fleet, the worst "
        "stores and when each store was up or down (the page at /). Report semantics: docs/uptime-logic.md.",
        lifespan=lifespan,
    )
    app.state.report_runs = DagsterRuns(dagster_url or settings.dagster_url())
    app.state.reports_dir = reports_dir or settings.reports_dir()
    app.state.finished_runs = FinishedRuns()
    app.state.database = ReaderDatabase(database_url or settings.database_url(), engine)
    app.state.timeline_pictures = TimelinePictures()  # drawn once per report and store
    app.include_router(monitor_pages)
    app.state.token_authority = TokenAuthority(listen_host)
    app.state.trigger_desk = TriggerDesk()
    app.state.run_lookups = reports.RunLookups()
    app.include_router(public_router)
    app.include_router(store_pages)
    app.include_router(reports.router)
    app.add_middleware(BodyLimit)
    app.add_middleware(CrossSiteGuard)  # outermost with SecurityHeaders: refusals get the headers too
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(RequestValidationError, bounded_validation_error)
    app.add_exception_handler(DatabaseUnavailable, database_unavailable)
    app.add_exception_handler(sa.exc.DBAPIError, database_error)
    return app


def database_unavailable(_request, exc: DatabaseUnavailable) -> JSONResponse:
    """503: the storemon database is missing or unreadable, in one line (db/engine.py)."""
    return JSONResponse(status_code=503, content={"detail": str(exc)})


def database_error(_request, exc: sa.exc.DBAPIError) -> JSONResponse:
    """503 for what the database refused while a page read it (a corrupt file, a table missing, the
    server down): the driver's reason in one line, never the SQL or its parameters."""
    return JSONResponse(status_code=503, content={"detail": unreadable(exc)})


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is refused with 413, whether announced
    by Content-Length or streamed in chunks, before it is read into memory."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await JSONResponse(status_code=413, content={"detail": self._too_large})(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(status_code=413, detail=self._too_large)
            return message

        await self.app(scope, limited_receive, send)

    @property
    def _too_large(self) -> str:
        return f"request body larger than {self.max_bytes:,} bytes"


def bounded_validation_error(_request, exc: RequestValidationError) -> JSONResponse:
    """422 with FastAPI's validation errors, every echoed input cut to a short excerpt."""
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(bounded_errors(exc.errors()))})


MAX_ERRORS_SHOWN = 10  # a body of a thousand unknown keys is a thousand errors


def bounded_errors(errors) -> list[dict]:
    """The first validation errors, every echoed input, and every key of the request named in
    an error's location (an unknown field's name), cut to a short excerpt."""
    bounded = []
    for error in list(errors)[:MAX_ERRORS_SHOWN]:
        error = dict(error)
        if "input" in error and not isinstance(error["input"], int | float | bool | None):
            error["input"] = _short(error["input"] if isinstance(error["input"], str) else repr(error["input"]))
        error["loc"] = [_short(part) if isinstance(part, str) else part for part in error.get("loc", ())]
        error.pop("ctx", None)  # may hold the input again
        bounded.append(error)
    return bounded


def _short(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else excerpt(text)

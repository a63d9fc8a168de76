"""Access to the HTTP API (SPEC §10), as one FastAPI dependency and two middlewares.

- `authorize` is the dependency every non-public route has (its router declares it; a test
  walks `app.routes` and fails for a route with neither it nor a place on `PUBLIC_PATHS`). It
  answers 401 without a valid, unrevoked token and 403 when the token's scope does not allow the
  action, and leaves the `Caller` (name, scope, store set) for routes that filter by store.
- The API is open (every caller an admin named `open:<client address>`) only while no token was
  ever created AND it listens on loopback; `storemon api` refuses any other address without a
  token, and the app itself also enforces tokens on any address that is not loopback.
- Tokens are looked up by hash in the database and remembered for `TOKEN_TTL_SECONDS`: a
  revoked token (or the first token created, which closes an open API) takes effect within
  that bound, and a request with a known token costs no database read. Last-used instants
  are gathered in memory and written at most every `LAST_USED_WRITE_SECONDS`.
- `CrossSiteGuard` refuses state-changing requests a browser marks as coming from another site,
  open API included; `SecurityHeaders` adds a strict Content-Security-Policy to HTML and SVG.

No cookies anywhere: a browser never attaches a credential by itself, so there is no CSRF
surface for tokens (the page sends the bearer header from script).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

import polars as pl
import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from storemon_assets.core.access import (
    Caller,
    ExpiringCache,
    action_of,
    cross_site_refusal,
    is_loopback,
    open_caller,
    rows_of_stores,
    token_hash,
)
from storemon_assets.db.tokens import TokenInfo, any_token, find_token, record_use
from storemon_assets.web.database import DatabaseIfAny

TOKEN_TTL_SECONDS = 5.0
LAST_USED_WRITE_SECONDS = 60.0
MAX_TOKEN_CHARS = 200

# Routes anyone may reach, tokens or not: the health check, the page shell and its static
# files, and the API's own description (no fleet data in any of them).
PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/",
        "/static/{name}",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/static-offline-docs",  # Swagger UI's and ReDoc's own files (fastapi-offline)
    }
)

_bearer = HTTPBearer(auto_error=False, description="An API token: storemon token create (docs/access.md).")


@dataclass
class TokenAuthority:
    """Decides who a request's caller is; one per app (`app.state.token_authority`)."""

    listen_host: str = "127.0.0.1"
    engine: sa.Engine | None = None
    ttl: float = TOKEN_TTL_SECONDS
    _tokens: ExpiringCache = field(init=False)
    _any_token: ExpiringCache = field(init=False)
    _used: dict[str, int] = field(init=False, default_factory=dict)
    _used_written_at: float = field(init=False, default_factory=time.monotonic)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self):
        self._tokens = ExpiringCache(self.ttl, size=10_000)
        self._any_token = ExpiringCache(self.ttl, size=1)

    @property
    def always_enforced(self) -> bool:
        return not is_loopback(self.listen_host)

    def _tokens_exist(self) -> bool:
        if self.engine is None:  # no database yet: no token either
            return False
        known, exists = self._any_token.get(True)
        if not known:
            exists = any_token(self.engine)
            self._any_token.put(True, exists)
        return bool(exists)

    def _lookup(self, token: str) -> TokenInfo | None:
        if self.engine is None:
            return None
        digest = token_hash(token)
        known, info = self._tokens.get(digest)
        if not known:
            info = find_token(self.engine, token)
            self._tokens.put(digest, info)
        return info

    def is_open(self) -> bool | None:
        """True/False if known without the database, None if it must be asked (cache expired)."""
        if self.always_enforced:
            return False
        known, exists = self._any_token.get(True)
        return (not exists) if known else None

    def remembered(self, token: str) -> Caller | None:
        """The caller of a token found valid less than `ttl` ago (no database read), or None:
        then `resolve` decides (unknown, revoked or forgotten tokens all go there)."""
        known, info = self._tokens.get(token_hash(token))
        if not known or info is None or info.revoked_at_us is not None:
            return None
        self._note_use(token)
        return info.caller

    def resolve(self, token: str | None, client_host: str | None) -> Caller:
        """The caller, or HTTPException 401 (blocking: may read the database)."""
        if not self.always_enforced and not self._tokens_exist():
            return open_caller(client_host)
        if not token:
            raise _unauthorized("this API needs a token: Authorization: Bearer <token> (docs/access.md)")
        info = self._lookup(token) if len(token) <= MAX_TOKEN_CHARS else None
        if info is None:
            raise _unauthorized("unknown token")
        if info.revoked_at_us is not None:
            raise _unauthorized(f"token {info.name!r} was revoked")
        self._note_use(token)
        return info.caller

    def _note_use(self, token: str) -> None:
        """Remember the instant; write the gathered instants at most once a LAST_USED_WRITE_SECONDS."""
        now = time.monotonic()
        with self._lock:
            self._used[token_hash(token)] = time.time_ns() // 1000
            if now - self._used_written_at < LAST_USED_WRITE_SECONDS:
                return
            used, self._used, self._used_written_at = self._used, {}, now
        threading.Thread(target=self._write_use, args=(used,), daemon=True).start()

    def _write_use(self, used: dict[str, int]) -> None:
        try:
            record_use(self.engine, used)
        except sa.exc.SQLAlchemyError:  # last-used is informative: never fail a request for it
            pass

    def forget(self) -> None:
        """Drop what is remembered (tests; a token just created or revoked in-process)."""
        self._tokens.clear()
        self._any_token.clear()


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    engine: DatabaseIfAny,
) -> Caller:
    """The dependency of every non-public route: the caller, or 401/403 (SPEC §10).

    `async` so that a request whose token is remembered never leaves the event loop; only a
    database read (a token not seen for TOKEN_TTL_SECONDS) goes to the thread pool."""
    authority: TokenAuthority = request.app.state.token_authority
    authority.engine = engine
    token = credentials.credentials.strip() if credentials else None
    client = request.client.host if request.client else None
    is_open = authority.is_open()
    if is_open:
        caller = open_caller(client)
    else:
        known = authority.remembered(token) if is_open is False and token else None
        caller = known or await run_in_threadpool(authority.resolve, token, client)
    route = request.scope.get("route")
    action = action_of(request.method, getattr(route, "name", None))
    if not caller.allows(action):
        raise HTTPException(
            status_code=403, detail=f"token {caller.name!r} has scope {caller.scope!r}, which does not allow {action}"
        )
    request.state.caller = caller
    return caller


Authorized = Annotated[Caller, Depends(authorize)]


def own_rows(caller: Caller, rows: pl.DataFrame) -> pl.DataFrame:
    """The rows (with a `store_id` column) the caller may see: all of them, or a tenant token's own."""
    return rows_of_stores(rows, caller.stores)


def not_found_for(caller: Caller, store_id: str) -> None:
    """A store outside the caller's set is 404, worded like a store that does not exist."""
    if not caller.sees(store_id):
        raise HTTPException(status_code=404, detail=f"store {store_id[:80]!r} is not in the current report")


# --- middlewares -------------------------------------------------------------------------------

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CrossSiteGuard:
    """ASGI middleware: a state-changing request (not GET/HEAD/OPTIONS) that a browser marks as
    sent by another site is refused with 403, before routing, whether the API is open or not."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            refusal = cross_site_refusal(headers.get("origin"), headers.get("sec-fetch-site"), headers.get("host"))
            if refusal:
                return await JSONResponse(status_code=403, content={"detail": refusal})(scope, receive, send)
        return await self.app(scope, receive, send)


# The page loads only its own script, style and pictures (pictures of a logged-in page come as
# blob: URLs), talks only to this server, and may not be framed. An SVG opened on its own may
# style itself but never run script.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
# /docs and /redoc: Swagger UI and ReDoc from this server's own files (fastapi-offline), started by
# an inline script; ReDoc styles itself inline and searches in a worker made from a blob. They hold
# no data, load nothing from elsewhere, and may not be framed or post forms.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src blob:; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")  # their files come from /static-offline-docs ('self')


class SecurityHeaders:
    """ASGI middleware: `nosniff` on every answer, a Content-Security-Policy on HTML and SVG."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        docs = scope["path"] in DOCS_PATHS or scope["path"].startswith("/docs/")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"").lower()
                headers.append((b"x-content-type-options", b"nosniff"))
                if content_type.startswith(b"text/html"):
                    headers.append((b"content-security-policy", (DOCS_POLICY if docs else PAGE_POLICY).encode()))
                    headers.append((b"referrer-policy", b"no-referrer"))
                elif content_type.startswith(b"image/svg+xml"):
                    headers.append((b"content-security-policy", SVG_POLICY.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

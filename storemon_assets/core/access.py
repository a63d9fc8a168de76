"""Who may see and do what (SPEC §10), as pure rules: tokens and their scopes, which requests a
scope allows, when the API is open, and the limits on triggers (rate limit, coalescing key).

No web framework and no database here: the API (`api` package) and the token store
(`db/tokens.py`) call these. See docs/access.md for the reasoning behind each number.

Tokens are 32 random bytes (`secrets.token_urlsafe`, 256 bits) with a readable prefix. The
database keeps only their SHA-256: a token that random cannot be guessed from its hash (a slow
password hash such as bcrypt protects *low-entropy* secrets; here it would only slow every
request), and a plain digest can be looked up by equality in an index.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import polars as pl

TOKEN_PREFIX = "smt_"
TOKEN_BYTES = 32
SCOPES = ("read", "trigger", "admin")
# What each scope may do: `read` every GET route; `trigger` also POST /trigger_report; `admin` all.
ACTIONS = ("read", "trigger", "admin")
_ALLOWED: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "trigger": frozenset({"read", "trigger"}),
    "admin": frozenset(ACTIONS),
}
MAX_NAME_CHARS = 64


def new_token() -> str:
    """A fresh random token, shown once to whoever creates it."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, hex (see the module docstring for why not bcrypt)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def check_token_name(name: str) -> str:
    """A token's name as stored: trimmed, 1-64 printable characters without a comma (names go in
    run tags and on `token list`)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable() or "," in name:
        raise ValueError(f"a token name is 1-{MAX_NAME_CHARS} printable characters without a comma, got {name!r}")
    return name


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    return scope


def parse_store_list(text: str | None) -> frozenset[str] | None:
    """`--stores ID,ID,...` -> the set of store ids (None: every store). Ids are opaque text,
    kept as written apart from surrounding spaces; an empty list is refused (it would see nothing)."""
    if text is None:
        return None
    stores = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not stores:
        raise ValueError("--stores needs at least one store id (omit it for a token that sees every store)")
    return stores


@dataclass(frozen=True)
class Caller:
    """Who is asking: a token's name, scope and store set, or the open API's client."""

    name: str
    scope: str
    stores: frozenset[str] | None = None  # None: every store

    def allows(self, action: str) -> bool:
        return action in _ALLOWED[self.scope]

    def sees(self, store_id: str) -> bool:
        return self.stores is None or store_id in self.stores

    @property
    def is_tenant(self) -> bool:
        return self.stores is not None


def rows_of_stores(rows: pl.DataFrame, stores: frozenset[str] | None) -> pl.DataFrame:
    """The rows (with a `store_id` column) of a store set: all of them for None (every store)."""
    return rows if stores is None else rows.filter(pl.col("store_id").is_in(sorted(stores)))


def open_caller(client_host: str | None) -> Caller:
    """The caller of an open API (no token configured, loopback only): may do everything; its
    runs are tagged `open:<client address>`."""
    return Caller(name=f"open:{client_host or 'unknown'}", scope="admin")


def is_loopback(host: str) -> bool:
    """Whether `storemon api --host` listens on loopback only (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal_to_start(host: str, tokens_exist: bool) -> str | None:
    """The one-line reason `storemon api` will not start, or None (SPEC §10)."""
    if tokens_exist or is_loopback(host):
        return None
    return (
        f"refusing to serve on {host} with no API token: anyone reaching it could read every store and start "
        "runs; create one first (storemon token create --name NAME --scope admin) or listen on 127.0.0.1"
    )


def action_of(method: str, route_name: str | None) -> str:
    """The action a request asks for: reads are GET/HEAD; POST /trigger_report is a trigger;
    anything else changes something and is for admins."""
    if method in ("GET", "HEAD"):
        return "read"
    if route_name in TRIGGER_ROUTES:
        return "trigger"
    return "admin"


TRIGGER_ROUTES = frozenset({"trigger_report"})


def cross_site_refusal(origin: str | None, fetch_site: str | None, host: str | None) -> str | None:
    """Why a state-changing request is refused as cross-site, or None.

    A browser names the page that sent a request in `Origin` and says `Sec-Fetch-Site:
    cross-site` when it is another site; curl and scripts send neither. A POST with no body and
    `text/plain` needs no CORS preflight, so any page the user visits could otherwise start runs.
    The origin is compared with the `Host` the request was sent to (scheme aside: behind a TLS
    proxy the API sees http while the page is https).
    """
    if fetch_site is not None and fetch_site.strip().lower() == "cross-site":
        return "cross-site request refused (Sec-Fetch-Site: cross-site)"
    if origin is None:
        return None
    origin = origin.strip()
    netloc = origin.split("://", 1)[1] if "://" in origin else ""
    if not netloc or host is None or netloc.lower() != host.strip().lower():
        return f"cross-site request refused: Origin {origin[:80]!r} is not this server"
    return None


# --- limits -------------------------------------------------------------------------------

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RateLimiter:
    """A token bucket per key (a token's name, or an open client's address): `burst` requests at
    once, then one every `60 / per_minute` seconds. `acquire` answers 0 when the request may go,
    else the seconds until it could (what `Retry-After` says). At most `max_keys` buckets are kept
    (the least recently used are forgotten: they start full again)."""

    def __init__(
        self, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ):
        self.burst = burst
        self.interval = 60.0 / per_minute
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, key: Hashable) -> float:
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) / self.interval)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) * self.interval
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait


def retry_after_header(wait_seconds: float) -> str:
    """`Retry-After` is whole seconds: rounded up, so a client that obeys it is let through."""
    return str(max(1, math.ceil(wait_seconds)))


class ExpiringCache(Generic[K, V]):
    """A small map whose entries live `ttl` seconds, bounded to `size` entries (oldest out).
    Used for remembered tokens, unknown report ids and coalesced triggers."""

    def __init__(self, ttl: float, size: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) for a live entry, else (False, None)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if self.clock() - entry[0] > self.ttl:
                del self._entries[key]
                return False, None
            return True, entry[1]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = (self.clock(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def trigger_key(job_name: str, as_of: str | None, data_version: Iterable) -> str:
    """What makes two triggers identical (SPEC §10: same T/as-of, same data): the job, its T as
    requested (None: the latest poll, which only new data moves), and the data version (every
    feed's version from the ingested-file ledger: every change of the data loads a file)."""
    parts = [job_name, as_of or "latest", *(str(v) for v in data_version)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

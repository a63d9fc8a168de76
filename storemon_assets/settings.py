"""Every setting storemon reads from the environment, declared and read here only (SPEC §7).

`SETTINGS` is the one list of variables: the README's configuration table is checked against
it by a test, and no other module reads a `STOREMON_*` variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DATA_DIR = _PACKAGE_DIR / "sample_data"


@dataclass(frozen=True)
class Setting:
    name: str
    meaning: str
    default: str  # as the README shows it


HOME = Setting(
    "STOREMON_HOME",
    "base of the default paths (`<home>`)",
    "the repository root in a checkout, else the current directory",
)
DATABASE_URL = Setting(
    "STOREMON_DATABASE_URL",
    "SQLAlchemy URL of the storemon database (SQLite or PostgreSQL)",
    "`sqlite:///<home>/data/storemon.db`",
)
DATA_DIR = Setting("STOREMON_DATA_DIR", "landing folder where new CSV files arrive", "`<home>/data/landing`")
REPORTS_DIR = Setting(
    "STOREMON_REPORTS_DIR", "where `combined_report.csv` and `<report_id>.csv` go", "`<home>/data/reports`"
)
AS_OF = Setting(
    "STOREMON_AS_OF", "fixed report time `T` of the current report (ISO-8601, or `now`)", "unset: the latest poll"
)
DAGSTER_URL = Setting("STOREMON_DAGSTER_URL", "the Dagster webserver, for the HTTP API", "`http://127.0.0.1:3000`")
MAX_STORE_PARTITIONS = Setting("STOREMON_MAX_STORE_PARTITIONS", "most store partitions to create", "`100000`")
API_URL = Setting(
    "STOREMON_API_URL",
    "where users reach the HTTP API and its page, for the links Dagster shows",
    "`http://127.0.0.1:8000`",
)
SQLITE_BUSY_TIMEOUT = Setting(
    "STOREMON_SQLITE_BUSY_TIMEOUT",
    "seconds an SQLite statement waits for another writer before failing (the run is then retried)",
    "`60`",
)
INGEST_RETRY_SECONDS = Setting(
    "STOREMON_INGEST_RETRY_SECONDS",
    "wait before a landing file whose run failed is tried again; doubles after each failure (5 runs in all)",
    "`30`",
)
LAST_LINE_SETTLE_SECONDS = Setting(
    "STOREMON_LAST_LINE_SETTLE_SECONDS",
    "a landing file whose last line has no newline is taken as complete once unchanged this long "
    "(one ending with a newline: after 2 s)",
    "`30`",
)
REPORT_SHARDS = Setting(
    "STOREMON_REPORT_SHARDS",
    "store shards the report fans out over (one step each; the run config's `shards` overrides it)",
    "`1`",
)
EXECUTOR = Setting(
    "STOREMON_EXECUTOR",
    "how Dagster runs the steps: `in_process`, `multiprocess` (a process per step) or `celery` (Celery workers)",
    "`in_process`",
)
CELERY_BROKER = Setting(
    "STOREMON_CELERY_BROKER",
    "Celery broker URL (also its result backend) for `STOREMON_EXECUTOR=celery` and `storemon worker`",
    "`redis://127.0.0.1:6379/0`",
)
ALERT_URLS = Setting(
    "STOREMON_ALERT_URLS",
    "Apprise URLs that alerts go to, space-separated (Slack, ntfy, e-mail, JSON webhooks...; docs/monitor.md)",
    "unset: no alerts are sent",
)
ALERT_MIN_DOWN_MINUTES = Setting(
    "STOREMON_ALERT_MIN_DOWN_MINUTES",
    "business minutes an open incident lasts before its store's *down* alert goes out",
    "`30`",
)
ALERT_MAX_PER_MESSAGE = Setting(
    "STOREMON_ALERT_MAX_PER_MESSAGE",
    "more alerts of one kind due at once than this go out as one summary message",
    "`20`",
)
STALE_AFTER_MINUTES = Setting(
    "STOREMON_STALE_AFTER_MINUTES",
    "an open store whose newest poll is older than this at T is *not reporting*; a report whose T is this far "
    "after the newest poll is flagged stale",
    "`120`",
)
PUBLIC_URL = Setting(
    "STOREMON_PUBLIC_URL",
    "where people reach the store pages, for links in alert messages",
    "unset: messages carry no link",
)

SETTINGS: tuple[Setting, ...] = (
    DATABASE_URL,
    DATA_DIR,
    REPORTS_DIR,
    AS_OF,
    DAGSTER_URL,
    API_URL,
    HOME,
    MAX_STORE_PARTITIONS,
    SQLITE_BUSY_TIMEOUT,
    INGEST_RETRY_SECONDS,
    LAST_LINE_SETTLE_SECONDS,
    REPORT_SHARDS,
    EXECUTOR,
    CELERY_BROKER,
    ALERT_URLS,
    ALERT_MIN_DOWN_MINUTES,
    ALERT_MAX_PER_MESSAGE,
    STALE_AFTER_MINUTES,
    PUBLIC_URL,
)
EXECUTORS = ("in_process", "multiprocess", "celery")


def _read(setting: Setting) -> str:
    return os.environ.get(setting.name, "").strip()


def is_set(setting: Setting) -> bool:
    """Whether the environment gives this setting a value (else its default applies)."""
    return bool(_read(setting))


def storemon_home() -> Path:
    if is_set(HOME):
        return Path(_read(HOME)).resolve()
    checkout = _PACKAGE_DIR.parent
    if (checkout / "workspace.yaml").exists():
        return checkout
    return Path.cwd()


def data_home() -> Path:
    return storemon_home() / "data"


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def database_url() -> str:
    return _read(DATABASE_URL) or sqlite_url(data_home() / "storemon.db")


def landing_dir() -> Path:
    return Path(_read(DATA_DIR) or data_home() / "landing").resolve()


def reports_dir() -> Path:
    return Path(_read(REPORTS_DIR) or data_home() / "reports").resolve()


def as_of_setting() -> str:
    return _read(AS_OF)


def dagster_url() -> str:
    return (_read(DAGSTER_URL) or "http://127.0.0.1:3000").rstrip("/")


def api_url() -> str:
    return (_read(API_URL) or "http://127.0.0.1:8000").rstrip("/")


def max_store_partitions() -> int:
    value = _read(MAX_STORE_PARTITIONS) or "100000"
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{MAX_STORE_PARTITIONS.name}={value!r} is not a whole number") from None


def _seconds(setting: Setting, default: str) -> float:
    value = _read(setting) or default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{setting.name}={value!r} is not a number of seconds")
    return seconds


def sqlite_busy_timeout() -> float:
    return _seconds(SQLITE_BUSY_TIMEOUT, "60")


def ingest_retry_seconds() -> float:
    return _seconds(INGEST_RETRY_SECONDS, "30")


def last_line_settle_seconds() -> float:
    return _seconds(LAST_LINE_SETTLE_SECONDS, "30")


def report_shards() -> int:
    value = _read(REPORT_SHARDS) or "1"
    try:
        shards = int(value)
    except ValueError:
        shards = 0
    if shards < 1:
        raise ValueError(f"{REPORT_SHARDS.name}={value!r} is not a whole number of at least 1")
    return shards


def executor_name() -> str:
    value = _read(EXECUTOR) or "in_process"
    if value not in EXECUTORS:
        raise ValueError(f"{EXECUTOR.name}={value!r} is not one of {', '.join(EXECUTORS)}")
    return value


def celery_broker() -> str:
    return _read(CELERY_BROKER) or "redis://127.0.0.1:6379/0"


def _whole_number(setting: Setting, default: str, least: int) -> int:
    value = _read(setting) or default
    try:
        number = int(value)
    except ValueError:
        number = least - 1
    if number < least:
        raise ValueError(f"{setting.name}={value!r} is not a whole number of at least {least}")
    return number


def alert_urls() -> list[str]:
    return _read(ALERT_URLS).split()


def alert_min_down_minutes() -> int:
    return _whole_number(ALERT_MIN_DOWN_MINUTES, "30", 0)


def alert_max_per_message() -> int:
    return _whole_number(ALERT_MAX_PER_MESSAGE, "20", 1)


def stale_after_minutes() -> int:
    return _whole_number(STALE_AFTER_MINUTES, "120", 1)


def public_url() -> str | None:
    return _read(PUBLIC_URL).rstrip("/") or None

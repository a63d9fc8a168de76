"""Every setting storemon reads from the environment, declared and read here only (SPEC §7).

`DECLARED` is the one declaration: each variable's type, default (written once), checks and
meaning. `StoremonSettings` (pydantic-settings, prefix `STOREMON_`) is built from it and checks
the values; the README's configuration table is checked against it by a test (`SETTINGS`), and
no other module reads a `STOREMON_*` variable. The environment is read afresh on every call, so
a changed variable counts at once; a blank value counts as unset, and a wrong one is refused
naming the variable (`STOREMON_X='y' is ...`).

Each setting is read on its own. An unset (or blank) one is its default, and a set text setting
is its trimmed value, without pydantic: a short command such as `storemon daily` reads only the
database URL and the SQLite busy timeout, and importing pydantic-settings would be a tenth of
its whole (docs/history.md). Every other value is checked by `StoremonSettings`, built (and
pydantic imported) at the first such read.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

_PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DATA_DIR = _PACKAGE_DIR / "sample_data"
PREFIX = "STOREMON_"
EXECUTORS = ("in_process", "multiprocess", "celery")


# --- value rules, each with the words a refusal uses ------------------------------------------


def _whole_number(least: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if number is None or (least is not None and number < least):
            raise ValueError("is not a whole number" + (f" of at least {least}" if least is not None else ""))
        return number

    return check


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1
    if not 0 <= seconds < float("inf"):
        raise ValueError("is not a number of seconds")
    return seconds


def _one_of_executors(value: Any) -> Any:
    if value not in EXECUTORS:
        raise ValueError(f"is not one of {', '.join(EXECUTORS)}")
    return value


def _no_trailing_slash(value: str | None) -> str | None:
    return value.rstrip("/") if value else value


# A report needs its week and a day (SPEC §11): a shorter retention is refused.
MIN_RETENTION_DAYS = 8


def _retention(days: int) -> int:
    if 0 < days < MIN_RETENTION_DAYS:
        raise ValueError(
            f"is refused: a report needs its week and a day, so keep at least {MIN_RETENTION_DAYS} days "
            "(or 0 to keep every poll)"
        )
    return days


@dataclass(frozen=True)
class Declared:
    """One variable: its value's type, default and meaning, and the checks pydantic runs on a
    set value (`before`: on the text, `after`: on the typed value)."""

    type: Any
    default: Any
    meaning: str
    shown: str | None = None  # the README's words for a default that is not a plain value
    before: Callable[[Any], Any] | None = None
    after: Callable[[Any], Any] | None = None

    @property
    def plain_text(self) -> bool:
        """A text value taken as given (trimmed): no check that needs pydantic."""
        return self.type in (str, str | None) and self.before is None and self.after is None


WHOLE_NUMBER = _whole_number()

DECLARED: dict[str, Declared] = {
    "database_url": Declared(
        str | None,
        None,
        "SQLAlchemy URL of the storemon database (SQLite or PostgreSQL)",
        shown="`sqlite:///<home>/data/storemon.db`",
    ),
    "data_dir": Declared(Path | None, None, "landing folder where new CSV files arrive", shown="`<home>/data/landing`"),
    "reports_dir": Declared(
        Path | None,
        None,
        "where `combined_report.csv` and `<report_id>.csv` go",
        shown="`<home>/data/reports`",
    ),
    "as_of": Declared(
        str, "", "fixed report time `T` of the current report (ISO-8601, or `now`)", shown="unset: the latest poll"
    ),
    "dagster_url": Declared(
        str, "http://127.0.0.1:3000", "the Dagster webserver, for the HTTP API", after=_no_trailing_slash
    ),
    "api_url": Declared(
        str,
        "http://127.0.0.1:8000",
        "where users reach the HTTP API and its page, for the links Dagster shows",
        after=_no_trailing_slash,
    ),
    "home": Declared(
        Path | None,
        None,
        "base of the default paths (`<home>`)",
        shown="the repository root in a checkout, else the current directory",
    ),
    "max_store_partitions": Declared(int, 100000, "most store partitions to create", before=WHOLE_NUMBER),
    "sqlite_busy_timeout": Declared(
        float,
        60,
        "seconds an SQLite statement waits for another writer before failing (the run is then retried)",
        before=_seconds,
    ),
    "ingest_retry_seconds": Declared(
        float,
        30,
        "wait before the ingest step retries a database error (locked, unreachable); doubles after "
        "each retry (5 attempts in all)",
        before=_seconds,
    ),
    "last_line_settle_seconds": Declared(
        float,
        30,
        "a landing file whose last line has no newline is taken as complete once unchanged this long "
        "(one ending with a newline: after 2 s)",
        before=_seconds,
    ),
    "report_shards": Declared(
        int,
        1,
        "store shards the report fans out over (one step each; the run config's `shards` overrides it)",
        before=_whole_number(least=1),
    ),
    "executor": Declared(
        Literal["in_process", "multiprocess", "celery"],
        "in_process",
        "how Dagster runs the steps: `in_process`, `multiprocess` (a process per step) or `celery` (Celery workers)",
        before=_one_of_executors,
    ),
    "celery_broker": Declared(
        str,
        "redis://127.0.0.1:6379/0",
        "Celery broker URL (also its result backend) for `STOREMON_EXECUTOR=celery` and `storemon worker`",
    ),
    "alert_urls": Declared(
        str,
        "",
        "Apprise URLs that alerts go to, space-separated (Slack, ntfy, e-mail, JSON webhooks...; docs/monitor.md)",
        shown="unset: no alerts are sent",
    ),
    "alert_min_down_minutes": Declared(
        int,
        30,
        "business minutes an open incident lasts before its store's *down* alert goes out",
        before=_whole_number(least=0),
    ),
    "alert_max_per_message": Declared(
        int,
        20,
        "more alerts of one kind due at once than this go out as one summary message",
        before=_whole_number(least=1),
    ),
    "stale_after_minutes": Declared(
        int,
        120,
        "an open store whose newest poll is older than this at T is *not reporting*; a report whose T "
        "is this far after the newest poll is flagged stale",
        before=_whole_number(least=1),
    ),
    "public_url": Declared(
        str | None,
        None,
        "where people reach the store pages, for links in alert messages",
        shown="unset: messages carry no link",
        after=_no_trailing_slash,
    ),
    "retention_days": Declared(
        int,
        0,
        "days of polls kept; older ones are pruned daily, keeping each store's carry-in and newest poll "
        "(0 keeps all, under 8 is refused; docs/history.md)",
        before=_whole_number(least=0),
        after=_retention,
    ),
    "report_keep_days": Declared(
        int,
        30,
        "days a run's own `<report_id>.csv` is kept in the reports folder (never `combined_report.csv`)",
        before=_whole_number(least=1),
    ),
}


@functools.cache
def settings_model() -> type[BaseSettings]:
    """`StoremonSettings`: the pydantic-settings class of DECLARED (each variable a field with
    its type, default, checks and meaning), built once, at the first value that needs checking."""
    from typing import Annotated

    from pydantic import AfterValidator, BeforeValidator, Field, create_model, model_validator
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Base(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

        @model_validator(mode="before")
        @classmethod
        def _blank_is_unset(cls, values: Any) -> Any:
            """Values trimmed; a blank one is dropped, so the default applies."""
            if not isinstance(values, dict):
                return values
            return {key: value for key, value in _trimmed(values).items() if value != ""}

    def field(declared: Declared) -> tuple[Any, Any]:
        checks = [BeforeValidator(declared.before)] if declared.before else []
        checks += [AfterValidator(declared.after)] if declared.after else []
        extra = {"shown": declared.shown} if declared.shown else None
        kind = Annotated[declared.type, *checks] if checks else declared.type
        return kind, Field(declared.default, description=declared.meaning, json_schema_extra=extra)

    return create_model(
        "StoremonSettings",
        __base__=Base,
        __doc__="storemon's configuration: `STOREMON_<FIELD NAME>` environment variables.",
        __module__=__name__,
        **{name: field(declared) for name, declared in DECLARED.items()},
    )


def _trimmed(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value.strip() if isinstance(value, str) else value for key, value in values.items()}


def __getattr__(name: str) -> Any:
    if name == "StoremonSettings":
        return settings_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _environment() -> tuple[tuple[str, str], ...]:
    """The STOREMON_* variables as set now (names matched whatever their case, as pydantic-settings does)."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(PREFIX)))


def load(field: str | None = None) -> Any:
    """The settings (a StoremonSettings) as the environment gives them now. A wrong value is
    refused naming its variable (ValueError); with `field`, only a wrong value of that one is
    (each setting is read independently: a wrong STOREMON_REPORT_SHARDS does not stop the API
    finding its database)."""
    return _load(_environment(), field)


@functools.lru_cache(maxsize=64)
def _load(environment: tuple[tuple[str, str], ...], field: str | None) -> Any:
    """`load` for one state of the STOREMON_* variables (reading them costs milliseconds)."""
    from pydantic import ValidationError

    model = settings_model()
    try:
        return model()
    except ValidationError as exc:
        wrong = {str(error["loc"][0]): error for error in exc.errors()}
    if field is None or field in wrong:
        error = wrong[field] if field in wrong else next(iter(wrong.values()))
        problem = error["ctx"]["error"] if "error" in error.get("ctx", {}) else error["msg"]
        raise ValueError(f"{PREFIX}{str(error['loc'][0]).upper()}={error['input']!r} {problem}")
    return model(**{name: DECLARED[name].default for name in wrong})


# --- the variables, as the README's table and other modules name them --------------------------


@dataclass(frozen=True)
class Setting:
    field: str
    name: str  # the environment variable
    meaning: str
    default: str  # as the README shows it


def _declared(field: str) -> Setting:
    declared = DECLARED[field]
    return Setting(field, PREFIX + field.upper(), declared.meaning, declared.shown or f"`{declared.default}`")


SETTINGS: tuple[Setting, ...] = tuple(_declared(field) for field in DECLARED)
_BY_FIELD = {setting.field: setting for setting in SETTINGS}
DATABASE_URL = _BY_FIELD["database_url"]
DATA_DIR = _BY_FIELD["data_dir"]
REPORTS_DIR = _BY_FIELD["reports_dir"]
AS_OF = _BY_FIELD["as_of"]
DAGSTER_URL = _BY_FIELD["dagster_url"]
API_URL = _BY_FIELD["api_url"]
HOME = _BY_FIELD["home"]
MAX_STORE_PARTITIONS = _BY_FIELD["max_store_partitions"]
SQLITE_BUSY_TIMEOUT = _BY_FIELD["sqlite_busy_timeout"]
INGEST_RETRY_SECONDS = _BY_FIELD["ingest_retry_seconds"]
LAST_LINE_SETTLE_SECONDS = _BY_FIELD["last_line_settle_seconds"]
REPORT_SHARDS = _BY_FIELD["report_shards"]
EXECUTOR = _BY_FIELD["executor"]
CELERY_BROKER = _BY_FIELD["celery_broker"]
ALERT_URLS = _BY_FIELD["alert_urls"]
ALERT_MIN_DOWN_MINUTES = _BY_FIELD["alert_min_down_minutes"]
ALERT_MAX_PER_MESSAGE = _BY_FIELD["alert_max_per_message"]
STALE_AFTER_MINUTES = _BY_FIELD["stale_after_minutes"]
PUBLIC_URL = _BY_FIELD["public_url"]
RETENTION_DAYS = _BY_FIELD["retention_days"]
REPORT_KEEP_DAYS = _BY_FIELD["report_keep_days"]


def is_set(setting: Setting) -> bool:
    """Whether the environment gives this setting a value (else its default applies): as `_get`
    tells, without pydantic. A wrong value counts as set (reading it is refused)."""
    return any(_given(setting.field))


# --- the values -----------------------------------------------------------------------------


def _given(field: str) -> list[str]:
    """The trimmed values of the field's variable (its name matched whatever its case, as
    pydantic-settings does); none, or only blank ones: unset."""
    name = PREFIX + field.upper()
    return [value.strip() for key, value in os.environ.items() if key.upper() == name]


def _get(field: str) -> Any:
    declared = DECLARED[field]
    values = _given(field)
    if not any(values):  # unset or blank: the default, as pydantic would give it (checked: 60 -> 60.0)
        return declared.before(declared.default) if declared.before is not None else declared.default
    if declared.plain_text and len(values) == 1:  # text taken as given: pydantic would return it as is
        return values[0]
    return getattr(load(field), field)


def storemon_home() -> Path:
    home = _get("home")
    if home is not None:
        return home.resolve()
    checkout = _PACKAGE_DIR.parent
    if (checkout / "workspace.yaml").exists():
        return checkout
    return Path.cwd()


def data_home() -> Path:
    return storemon_home() / "data"


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def database_url() -> str:
    return _get("database_url") or sqlite_url(data_home() / "storemon.db")


def landing_dir() -> Path:
    return (_get("data_dir") or data_home() / "landing").resolve()


def reports_dir() -> Path:
    return (_get("reports_dir") or data_home() / "reports").resolve()


def as_of_setting() -> str:
    return _get("as_of")


def dagster_url() -> str:
    return _get("dagster_url")


def api_url() -> str:
    return _get("api_url")


def max_store_partitions() -> int:
    return _get("max_store_partitions")


def sqlite_busy_timeout() -> float:
    return _get("sqlite_busy_timeout")


def ingest_retry_seconds() -> float:
    return _get("ingest_retry_seconds")


def last_line_settle_seconds() -> float:
    return _get("last_line_settle_seconds")


def report_shards() -> int:
    return _get("report_shards")


def executor_name() -> str:
    return _get("executor")


def celery_broker() -> str:
    return _get("celery_broker")


def alert_urls() -> list[str]:
    return _get("alert_urls").split()


def alert_min_down_minutes() -> int:
    return _get("alert_min_down_minutes")


def alert_max_per_message() -> int:
    return _get("alert_max_per_message")


def stale_after_minutes() -> int:
    return _get("stale_after_minutes")


def public_url() -> str | None:
    return _get("public_url") or None


def retention_days() -> int:
    """STOREMON_RETENTION_DAYS: 0 (keep every poll) or at least MIN_RETENTION_DAYS."""
    return _get("retention_days")


def report_keep_days() -> int:
    return _get("report_keep_days")


# --- the process -------------------------------------------------------------------------------


def limit_blas_threads() -> None:
    """One OpenBLAS thread for this process and the ones it starts, unless OPENBLAS_NUM_THREADS
    is set: call before numpy is first imported (the command line does, first thing).

    storemon does no linear algebra (numpy copies and gathers arrays), but numpy's OpenBLAS
    starts a thread per further core when it loads, which spins waiting for work for a while,
    CPU every process pays for nothing (docs/history.md).
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

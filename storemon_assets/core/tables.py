"""Every table storemon keeps or publishes, declared once.

A declaration names each column with its polars type and a description, and the table's
indexes. The database layer turns it into SQLAlchemy DDL (`db/schema.py`; Alembic migrations
bring a database to it, and a test checks the migrated schema against it), the computation
reads frames typed by it, and the Dagster layer shows it as the `TableSchema` in the UI, so
they cannot drift apart. Timestamps are integer microseconds since the Unix epoch (UTC) and
times of day integer microseconds since local midnight: exact, compact and identical on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from storemon_assets.core.feeds import DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    description: str
    primary_key: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...] = ()
    # SQLite: store rows inside the primary-key B-tree (WITHOUT ROWID): no rowid, no second
    # copy of the key, and the rows of one key prefix lie together on disk.
    clustered: bool = False

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def subset(self, *names: str) -> pl.Schema:
        """The polars schema of some of the columns, in the order given."""
        schema = self.polars_schema
        return pl.Schema({name: schema[name] for name in names})


def _text(name: str, description: str, **kw) -> Column:
    return Column(name, pl.String(), description, **kw)


def _int(name: str, description: str, **kw) -> Column:
    return Column(name, pl.Int64(), description, **kw)


def _key(name: str, description: str, **kw) -> Column:
    return Column(name, pl.Int32(), description, **kw)


STORES = Table(
    "stores",
    "Every store that has a poll: its opaque store_id and the small integer key the polls table "
    "uses in its place (assigned when the store's first poll is loaded; never shown to users).",
    (
        _key("store_key", "Integer key of the store, assigned by the database.", primary_key=True),
        _text("store_id", "Opaque store identifier (never parsed as a number)."),
    ),
    indexes=(Index("ix_stores_store_id", ("store_id",), unique=True),),
)

STORE_STATUS_POLLS = Table(
    "store_status_polls",
    "Every distinct status poll ever loaded (exact duplicates count once), in compact form. The "
    "primary key (store, time) serves every time-range read: one range per store.",
    (
        _key("store_key", "The store (stores.store_key).", primary_key=True),
        _int("polled_at_us", "Poll instant, microseconds since 1970-01-01 UTC.", primary_key=True),
        Column("active", pl.Boolean(), "True for status 'active', false for 'inactive'.", primary_key=True),
    ),
    clustered=True,
)

# A weekly opening interval of a store; the key of both hours tables.
WEEKLY_INTERVAL_COLUMNS = (
    _text("store_id", "Opaque store identifier.", primary_key=True),
    Column("day_of_week", pl.Int8(), "0 = Monday ... 6 = Sunday.", primary_key=True),
    _int("start_time_us", "Opening time, microseconds after local midnight.", primary_key=True),
    _int("end_time_us", "Closing time, microseconds after local midnight (<= start: next day).", primary_key=True),
)

BUSINESS_HOURS = Table(
    "business_hours",
    "Opening intervals in local wall-clock time. A hours file is authoritative for the stores "
    "it names: their earlier rows are replaced.",
    (*WEEKLY_INTERVAL_COLUMNS, _text("source_file", "Name of the file these rows came from.")),
)

STORE_TIMEZONES = Table(
    "store_timezones",
    "Each store's IANA timezone; the last row loaded for a store wins.",
    (
        _text("store_id", "Opaque store identifier.", primary_key=True),
        _text("timezone_str", "IANA timezone name, e.g. America/Chicago."),
        _text("source_file", "Name of the file this row came from."),
    ),
)

REJECTED_ROWS = Table(
    "rejected_rows",
    "Input rows that could not be parsed, kept with their origin and the reason.",
    (
        _text("file_sha256", "Content hash of the file the row came from.", primary_key=True),
        _int("line_number", "1-based line number in that file (the header is line 1).", primary_key=True),
        _text("file_name", "Name of the file the row came from."),
        _text("kind", "Feed kind: polls, hours, timezones or special_hours."),
        _text("store_id", "The row's store_id where one could be read.", nullable=True),
        _text("raw_text", "The line exactly as it appeared."),
        _text("reason", "Why the row was rejected."),
    ),
)

REJECTED_ROW_COUNTS = Table(
    "rejected_row_counts",
    "Every rejected row, counted per file and reason (rejected_rows keeps the first 10,000 of a file with their text).",
    (
        _text("file_sha256", "Content hash of the file.", primary_key=True),
        _text("reason", "Why the rows were rejected.", primary_key=True),
        _text("kind", "Feed kind: polls, hours, timezones or special_hours."),
        _int("row_count", "Rows of the file rejected for this reason."),
    ),
)

INGESTED_FILES = Table(
    "ingested_files",
    "Ledger of every file loaded, keyed by content hash, so a file is never loaded twice.",
    (
        _text("file_sha256", "SHA-256 of the file's bytes.", primary_key=True),
        _text("file_name", "Name of the file when it was loaded."),
        _text("kind", "Feed kind: polls, hours, timezones or special_hours."),
        _int("ingested_at_us", "When it was loaded, microseconds since 1970-01-01 UTC."),
        _int("rows_read", "Data rows in the file (blank lines excluded)."),
        _int("rows_loaded", "Rows accepted (before de-duplication against earlier loads)."),
        _int("rows_rejected", "Rows sent to rejected_rows."),
        _int("first_poll_us", "Polls files: the earliest accepted poll instant (a late poll's reach).", nullable=True),
        _int("last_poll_us", "Polls files: the latest accepted poll instant.", nullable=True),
    ),
)

# A special-hours row's times: both null on a row that closes the store for the whole date.
_SPECIAL_START = _int("start_time_us", "Opening time, microseconds after local midnight; null: closed.", nullable=True)
_SPECIAL_END = _int(
    "end_time_us", "Closing time, microseconds after local midnight (<= start: next day); null: closed.", nullable=True
)

SPECIAL_HOURS = Table(
    "special_hours",
    "Dates on which a store's hours differ from its week (holidays, closures, short days), in local "
    "wall-clock time. A date's rows replace the store's weekly rows for that date; a row without "
    "times closes the store all that date. A file is authoritative for the (store, date) pairs it names.",
    (
        _text("store_id", "Opaque store identifier."),
        Column("local_date", pl.Date(), "The store's local calendar date these hours are for."),
        _SPECIAL_START,
        _SPECIAL_END,
        _text("source_file", "Name of the file these rows came from."),
    ),
    # No primary key: a closed row has no times. Rows are found and replaced by (store, date).
    indexes=(Index("ix_special_hours_store_date", ("store_id", "local_date")),),
)

STORE_SCHEDULES = Table(
    "store_schedules",
    "Each store's normalised schedule, as last materialised for its store partition: weekly rows with "
    "the defaults applied (no rows = open around the clock), its special-hours rows (special_date set), "
    "and its timezone resolved.",
    (
        *WEEKLY_INTERVAL_COLUMNS[:2],
        _SPECIAL_START,
        _SPECIAL_END,
        _text("timezone", f"IANA timezone used ({DEFAULT_TIMEZONE} when the store has none)."),
        Column(
            "special_date",
            pl.Date(),
            "Null on a weekly row; on a special-hours row, the local date it replaces the weekly rows of "
            "(day_of_week is then that date's weekday).",
            nullable=True,
        ),
    ),
    # No primary key (a closed special row has no times); a store's rows are read and replaced together.
    indexes=(Index("ix_store_schedules_store_id", ("store_id",)),),
)

# The current report's status intervals. Bounds are integer half-microseconds since the epoch:
# a status change sits at the midpoint of two polls, which can fall on half a microsecond, and
# integers keep every sum exact (see core/uptime.py). Local bounds are for reading, rounded down
# to the microsecond.
STORE_STATUS_INTERVALS = Table(
    "store_status_intervals",
    "When each store of the current report was up or down: its business time in the week before T "
    "cut at every status change (nearest observation), or 'no_data' for a store without observations. "
    "Summed per window, the intervals give the report's numbers exactly.",
    (
        _text("store_id", "Opaque store identifier.", primary_key=True),
        _int("start_half_us", "Start, half-microseconds since 1970-01-01 UTC (inclusive).", primary_key=True),
        _int("end_half_us", "End, half-microseconds since 1970-01-01 UTC (exclusive)."),
        _text("status", "'up', 'down', or 'no_data' (the store has no observation at all)."),
        _int("start_local_us", "Start on the store's wall clock, microseconds since 1970-01-01 local time."),
        _int("end_local_us", "End on the store's wall clock, microseconds since 1970-01-01 local time."),
    ),
    clustered=True,
)


def _report_column(kind: str, window: str) -> Column:
    unit = "minutes" if window == "hour" else "hours"
    return Column(
        f"{kind}_last_{window}",
        pl.Float64(),
        f"{kind.capitalize()} during business hours in the last {window}, in {unit} (2 decimals).",
    )


# The published report (SPEC §6): a CSV file (the current one is also the table below).
UPTIME_REPORT = Table(
    "uptime_report",
    "Uptime and downtime of every polled store during its business hours before T.",
    (
        _text("store_id", "Store identifier, sorted as a string."),
        *(_report_column(kind, window) for kind in ("uptime", "downtime") for window in ("hour", "day", "week")),
    ),
)


# The current report, published as a table beside combined_report.csv so the API can answer
# per-store and worst-N questions with indexed reads.
CURRENT_REPORT = Table(
    "current_report",
    "The rows of the current report (combined_report.csv), one per store, as rounded there.",
    (_text("store_id", "Store identifier.", primary_key=True), *UPTIME_REPORT.columns[1:]),
    clustered=True,
)

CURRENT_REPORT_INFO = Table(
    "current_report_info",
    "One row: which report current_report and store_status_intervals hold.",
    (
        _text("report_id", "The run that published it (its Dagster run id, or a local id).", primary_key=True),
        _int("as_of_us", "The report's T, microseconds since 1970-01-01 UTC."),
        _int("published_at_us", "When it was published, microseconds since 1970-01-01 UTC."),
        _int("stores", "Stores in the report."),
        _int("stores_without_observations", "Stores with polls but no observation (no_data)."),
    ),
)


# SPEC §9: the current report's incidents and each store's status at its T, replaced with it.
STORE_INCIDENTS = Table(
    "store_incidents",
    "Incidents of the current report: maximal stretches of a store's down business time in the week before T "
    "with no up business time between their parts (closed time does not end one). Read off "
    "store_status_intervals, so each store's incidents sum to its downtime_last_week exactly.",
    (
        _text("store_id", "Opaque store identifier.", primary_key=True),
        _int(
            "started_half_us",
            "First down instant, half-microseconds since 1970-01-01 UTC (the week's start if the store was down then).",
            primary_key=True,
        ),
        _int(
            "ended_half_us",
            "First up instant after it, half-microseconds since 1970-01-01 UTC; null while open.",
            nullable=True,
        ),
        _int("downtime_half_us", "Its down business time inside the week, in half-microseconds."),
        Column("open", pl.Boolean(), "True while the store is still down at T."),
        _int("started_local_us", "Start on the store's wall clock, microseconds since 1970-01-01 local time."),
        _int("ended_local_us", "End on the store's wall clock; null while open.", nullable=True),
    ),
    clustered=True,
)

STORE_STATUS_NOW = Table(
    "store_status_now",
    "Each store of the current report at its T: up, down, closed or no_data, since when, its newest poll, "
    "and whether it is not reporting (inside business time, newest poll older than STOREMON_STALE_AFTER_MINUTES).",
    (
        _text("store_id", "Opaque store identifier.", primary_key=True),
        _text("status", "'up', 'down', 'closed' (outside business time at T) or 'no_data' (no observation)."),
        _int(
            "since_half_us",
            "Since when, half-microseconds since 1970-01-01 UTC; null: longer than the week.",
            nullable=True,
        ),
        Column("open_now", pl.Boolean(), "Inside its business time at T."),
        _text("timezone", f"IANA timezone used ({DEFAULT_TIMEZONE} when the store has none)."),
        _int("newest_poll_us", "Its newest poll at or before T, microseconds since 1970-01-01 UTC.", nullable=True),
        Column("not_reporting", pl.Boolean(), "Open at T and silent for longer than the stale limit: a guess."),
    ),
    clustered=True,
)

ALERT_DELIVERIES = Table(
    "alert_deliveries",
    "The alert ledger: one row per notification (store, subject, kind) and channel. A row is claimed "
    "('sending') before its message goes out and marked 'sent' or 'failed' after, so each is sent at most once "
    "across restarts; failed ones are tried again at the next evaluation while still due.",
    (
        _text("store_id", "Opaque store identifier.", primary_key=True),
        _text("kind", "'down', 'recovered' or 'not_reporting'.", primary_key=True),
        _int(
            "subject_us",
            "What it is about: the incident's first notified start (half-microseconds), or for "
            "not_reporting the newest poll it went silent after (microseconds).",
            primary_key=True,
        ),
        _text(
            "channel", "Short hash of the Apprise URL it goes to (never the URL: it holds secrets).", primary_key=True
        ),
        _text("state", "'sending', 'sent' or 'failed'."),
        _int("attempts", "Delivery attempts so far."),
        _int("first_due_us", "When it first became due, microseconds since 1970-01-01 UTC."),
        _int("updated_us", "When the row last changed, microseconds since 1970-01-01 UTC."),
        _int("as_of_us", "T of the report that made it due."),
        _text("last_error", "Why the last attempt failed.", nullable=True),
    ),
    indexes=(Index("ix_alert_deliveries_state", ("state",)),),
)

# Daily values (SPEC §8), exact: integer half-microseconds like the status intervals they sum.
# What the asset publishes and the code computes with: one row per (local date, store). Stored
# packed (STORE_DAILY_PACKED below), not row by row.
STORE_DAILY_UPTIME = Table(
    "store_daily_uptime",
    "Each store's business, up and down time per local calendar date (the part of the day before as_of_us), "
    "split by the nearest observation; kept after the polls behind them are pruned (docs/history.md).",
    (
        Column("local_date", pl.Date(), "The store's local calendar date.", primary_key=True),
        _text("store_id", "Opaque store identifier.", primary_key=True),
        _int("business_half_us", "Business time of the day before as_of_us, half-microseconds."),
        _int("up_half_us", "Of it, time whose nearest observation was active, half-microseconds."),
        _int("down_half_us", "Of it, time whose nearest observation was inactive, half-microseconds."),
        _int(
            "final_from_us",
            "Later observations cannot change the values for any T at or after this instant (null: the store had "
            "no observation by as_of_us).",
            nullable=True,
        ),
        _int("as_of_us", "The T the values were computed for, microseconds since 1970-01-01 UTC."),
        _int("computed_at_us", "When they were computed, microseconds since 1970-01-01 UTC."),
    ),
)

# How the daily values are stored: per local date and shard of 1,024 store keys, one row whose
# `packed` holds the values of the shard's stores as fixed-width little-endian records
# (db/history.py: DAILY_RECORD). 90 days of the real fleet are ~1,300 rows that a read turns
# into columns with one numpy call, where 1.2 M rows cost seconds of driver time (docs/history.md).
STORE_DAILY_PACKED = Table(
    "store_daily_packed",
    "The daily values (store_daily_uptime's columns, the store as its key) of one local date and one shard "
    "of store keys (store_key // 1024), packed as fixed-width records sorted by store key.",
    (
        Column("local_date", pl.Date(), "The stores' local calendar date.", primary_key=True),
        _key("shard", "store_key // 1024: the shard of 1,024 store keys whose values the row holds.", primary_key=True),
        _key("stores", "How many stores' records `packed` holds."),
        Column(
            "packed",
            pl.Binary(),
            "Per store, sorted by key: store_key int32, business_half_us, up_half_us, down_half_us, final_from_us "
            "(-2**63: null), as_of_us, computed_at_us int64, little-endian.",
        ),
    ),
    clustered=True,
)

RETENTION_STATE = Table(
    "retention_state",
    "At most one row: the retention cutoff in force. Polls before it were pruned (except each store's "
    "carry-in and newest poll), and a poll before it that arrives later is rejected.",
    (
        Column("singleton", pl.Int8(), "Always 1: the table holds one row.", primary_key=True),
        _int("cutoff_us", "Polls older than this were pruned, microseconds since 1970-01-01 UTC."),
        _int("set_at_us", "When the cutoff was set, microseconds since 1970-01-01 UTC."),
    ),
)

# API tokens (SPEC §10). Only a hash of each token is kept (core/access.py says why SHA-256).
API_TOKENS = Table(
    "api_tokens",
    "Tokens of the HTTP API: who may read, trigger reports or administer, and which stores they see. "
    "The token itself is shown once when created and never stored.",
    (
        _text("token_hash", "SHA-256 of the token, hex.", primary_key=True),
        _text("name", "Unique name of the token (run tags say it as storemon/requested_by)."),
        _text("scope", "'read', 'trigger' or 'admin'."),
        _text("stores", "JSON list of the store ids it sees; null: every store.", nullable=True),
        _int("created_at_us", "When it was created, microseconds since 1970-01-01 UTC."),
        _int(
            "last_used_at_us",
            "When it was last used (written at most once a minute per token), microseconds since 1970-01-01 UTC.",
            nullable=True,
        ),
        _int("revoked_at_us", "When it was revoked (null: valid), microseconds since 1970-01-01 UTC.", nullable=True),
    ),
    indexes=(Index("ix_api_tokens_name", ("name",), unique=True),),
)

STORED_TABLES: tuple[Table, ...] = (
    STORES,
    STORE_STATUS_POLLS,
    BUSINESS_HOURS,
    STORE_TIMEZONES,
    SPECIAL_HOURS,
    REJECTED_ROWS,
    REJECTED_ROW_COUNTS,
    INGESTED_FILES,
    STORE_SCHEDULES,
    STORE_STATUS_INTERVALS,
    CURRENT_REPORT,
    CURRENT_REPORT_INFO,
    STORE_INCIDENTS,
    STORE_STATUS_NOW,
    ALERT_DELIVERIES,
    STORE_DAILY_PACKED,
    RETENTION_STATE,
    API_TOKENS,
)

"""Reading the three input feeds (SPEC §1) into typed polars frames.

A file is recognised by its header, never by its name. Every data line either becomes a typed
row or a rejected row carrying its line number, raw text and a reason; nothing is dropped
silently. Only a file that is unreadable as a whole (not UTF-8 text, unknown header) raises
`FeedFileError`, whose message names the file and what was expected.

Lines are split on commas with polars string kernels rather than a CSV parser, because the
feeds' fields never contain commas and this keeps the exact raw text and line number of every
row for the rejected-rows table. Surrounding double quotes and whitespace are stripped.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl

from storemon_assets.core.feeds import HOURS, POLLS, TIMEZONES
from storemon_assets.core.tables import REJECTED_ROWS

# Accepted header spellings per kind; the first spelling of each column is canonical.
FEED_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    POLLS: {"store_id": ("store_id",), "status": ("status",), "timestamp_utc": ("timestamp_utc",)},
    HOURS: {
        "store_id": ("store_id",),
        "day_of_week": ("dayofweek", "day"),
        "start_time_local": ("start_time_local",),
        "end_time_local": ("end_time_local",),
    },
    TIMEZONES: {"store_id": ("store_id",), "timezone_str": ("timezone_str",)},
}

EXPECTED_HEADERS = (
    "store_id,status,timestamp_utc (status polls); "
    "store_id,dayOfWeek|day,start_time_local,end_time_local (business hours); "
    "store_id,timezone_str (timezones)"
)

# What the parser knows of a rejected row; the loader adds the file and the kind.
REJECTED_COLUMNS = REJECTED_ROWS.subset("line_number", "store_id", "raw_text", "reason")


class FeedFileError(ValueError):
    """A whole file cannot be ingested; the message is one line meant for the user."""


@dataclass(frozen=True)
class ParsedFeed:
    """One input file, parsed. `rows` is typed per kind; `rejected` follows REJECTED_COLUMNS."""

    path: Path
    sha256: str
    kind: str
    rows: pl.DataFrame
    rejected: pl.DataFrame
    rows_read: int


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def detect_kind(header_fields: list[str]) -> tuple[str, list[str]] | None:
    """Map a header to (kind, canonical column name per position), or None if unknown."""
    lowered = [f.lower() for f in header_fields]
    for kind, columns in FEED_COLUMNS.items():
        if len(lowered) != len(columns):
            continue
        canonical: list[str] = []
        for field in lowered:
            match = next((name for name, spellings in columns.items() if field in spellings), None)
            if match is None or match in canonical:
                break
            canonical.append(match)
        else:
            return kind, canonical
    return None


def _clean_field(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().str.strip_chars('"').str.strip_chars()


def read_feed_file(path: str | Path) -> ParsedFeed:
    """Parse one file of any of the three kinds."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FeedFileError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    return parse_feed_bytes(data, path)


def parse_feed_bytes(data: bytes, path: Path) -> ParsedFeed:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedFileError(f"{path.name}: not a UTF-8 CSV file (byte {exc.start} cannot be decoded)") from exc
    if "\x00" in text:
        raise FeedFileError(f"{path.name}: not a CSV file (contains NUL bytes)")

    lines = (
        pl.DataFrame({"raw_text": [text]})
        .select(pl.col("raw_text").str.split("\n"))
        .explode("raw_text")
        .with_row_index("line_number", offset=1)
        .with_columns(pl.col("line_number").cast(pl.Int64), pl.col("raw_text").str.strip_suffix("\r"))
    )
    header_line = lines.filter(pl.col("raw_text").str.strip_chars() != "").head(1)
    if header_line.height == 0:
        raise FeedFileError(f"{path.name}: empty file; expected a header line, one of: {EXPECTED_HEADERS}")
    header_text = header_line["raw_text"][0]
    header_fields = [f.strip().strip('"').strip() for f in header_text.split(",")]
    detected = detect_kind(header_fields)
    if detected is None:
        shown = header_text if len(header_text) <= 120 else header_text[:117] + "..."
        raise FeedFileError(f"{path.name}: unrecognised header {shown!r}; expected one of: {EXPECTED_HEADERS}")
    kind, columns = detected

    header_number = header_line["line_number"][0]
    body = lines.filter((pl.col("line_number") > header_number) & (pl.col("raw_text").str.strip_chars() != ""))
    fields = pl.col("raw_text").str.split(",")
    body = body.with_columns(fields.list.len().alias("_n_fields")).with_columns(
        _clean_field(fields.list.get(i, null_on_oob=True)).alias(name) for i, name in enumerate(columns)
    )
    parser = {POLLS: _parse_polls, HOURS: _parse_hours, TIMEZONES: _parse_timezones}[kind]
    typed = parser(body)
    reason = (
        pl.when(pl.col("_n_fields") != len(columns))
        .then(pl.format("expected {} fields, found {}", pl.lit(len(columns)), pl.col("_n_fields")))
        .when(pl.col("store_id").is_null() | (pl.col("store_id") == ""))
        .then(pl.lit("missing store_id"))
        .otherwise(pl.col("_reason"))
    )
    typed = typed.with_columns(reason.alias("_reason"))
    rejected = typed.filter(pl.col("_reason").is_not_null()).select(
        "line_number",
        pl.when(pl.col("store_id") != "").then(pl.col("store_id")).alias("store_id"),
        "raw_text",
        pl.col("_reason").alias("reason"),
    )
    good = typed.filter(pl.col("_reason").is_null()).drop(
        [c for c in typed.columns if c.startswith("_") or c == "raw_text"] + list(_RAW_ONLY[kind])
    )
    return ParsedFeed(
        path=path,
        sha256=file_sha256(data),
        kind=kind,
        rows=good,
        rejected=rejected.cast(REJECTED_COLUMNS),
        rows_read=body.height,
    )


# Raw text columns replaced by typed ones in the parsed output.
_RAW_ONLY = {
    POLLS: ("timestamp_utc",),
    HOURS: ("start_time_local", "end_time_local"),
    TIMEZONES: (),
}


def _first_reason(*checks: tuple[pl.Expr, str]) -> pl.Expr:
    """The first failing check's message, or null when every check passes."""
    expr = pl.when(checks[0][0]).then(pl.lit(checks[0][1]))
    for failed, message in checks[1:]:
        expr = expr.when(failed).then(pl.lit(message))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


# --- status polls -------------------------------------------------------------------------

# 2023-01-22 12:09:39.388884 UTC | 2023-01-22T12:09:39Z | ...+00:00 | ...-05:00 | no suffix
TIMESTAMP_PATTERN = (
    r"^(?i)(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(:\d{2})?(?:\.(\d{1,6}))?"
    r"\s*(UTC|Z|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamp_utc(text: pl.Expr) -> pl.Expr:
    """Timestamp text -> microseconds since the epoch (UTC), null when unparseable."""
    parts = text.str.extract_groups(TIMESTAMP_PATTERN)
    date_time = pl.concat_str(
        parts.struct.field("1"),
        pl.lit(" "),
        parts.struct.field("2"),
        parts.struct.field("3").fill_null(":00"),
    )
    wall = date_time.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False)
    fraction_us = parts.struct.field("4").str.pad_end(6, "0").cast(pl.Int64, strict=False).fill_null(0)
    suffix = parts.struct.field("5").str.to_uppercase()
    offset = suffix.str.replace(":", "", literal=True)
    offset_us = (
        pl.when(suffix.is_null() | suffix.is_in(["UTC", "Z"]))
        .then(pl.lit(0, dtype=pl.Int64))
        .otherwise(
            (
                offset.str.slice(1, 2).cast(pl.Int64, strict=False) * 60
                + offset.str.slice(3, 2).cast(pl.Int64, strict=False)
            )
            * 60_000_000
            * pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
        )
    )
    return wall.dt.epoch("us") + fraction_us - offset_us


# The real feed's own spelling, e.g. `2023-01-22 12:09:39.388884 UTC`: checked with a plain
# match and read with strptime, three times faster than the general pattern's capture groups.
FEED_TIMESTAMP_SHAPE = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})? UTC$"


def parse_timestamps_utc(frame: pl.DataFrame, text_col: str, out_col: str) -> pl.DataFrame:
    """Add `out_col` (µs, UTC) parsed from `text_col`: the feed's spelling on a fast path, every
    other accepted spelling (and every error) through `parse_timestamp_utc`. Same results."""
    text = pl.col(text_col)
    fast = pl.when(text.str.contains(FEED_TIMESTAMP_SHAPE)).then(
        text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f UTC", strict=False).dt.epoch("us")
    )
    frame = frame.with_row_index("_row").with_columns(fast.alias(out_col))
    rest = frame.filter(pl.col(out_col).is_null() & text.is_not_null())
    if rest.height:
        frame = frame.update(rest.select("_row", parse_timestamp_utc(text).alias(out_col)), on="_row")
    return frame.drop("_row")


def _parse_polls(body: pl.DataFrame) -> pl.DataFrame:
    status = pl.col("status").str.to_lowercase()
    body = parse_timestamps_utc(body.with_columns(status.alias("status")), "timestamp_utc", "polled_at_us")
    return body.with_columns(
        _first_reason(
            (pl.col("timestamp_utc").is_null() | (pl.col("timestamp_utc") == ""), "missing timestamp_utc"),
            (pl.col("polled_at_us").is_null(), "bad timestamp_utc (expected e.g. 2023-01-22 12:09:39.388884 UTC)"),
            (~pl.col("status").is_in(["active", "inactive"]), "unknown status (expected active or inactive)"),
        ).alias("_reason")
    )


# --- business hours -----------------------------------------------------------------------

TIME_OF_DAY_PATTERN = r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$"


def parse_time_of_day_us(text: pl.Expr) -> pl.Expr:
    """`HH:MM` or `HH:MM:SS[.ffffff]` -> microseconds after midnight, null when invalid."""
    parts = text.str.extract_groups(TIME_OF_DAY_PATTERN)
    hours = parts.struct.field("1").cast(pl.Int64, strict=False)
    minutes = parts.struct.field("2").cast(pl.Int64, strict=False)
    seconds = parts.struct.field("3").cast(pl.Int64, strict=False).fill_null(0)
    fraction = parts.struct.field("4").str.pad_end(6, "0").cast(pl.Int64, strict=False).fill_null(0)
    valid = (hours <= 23) & (minutes <= 59) & (seconds <= 59)
    return pl.when(valid).then(((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + fraction)


def _parse_hours(body: pl.DataFrame) -> pl.DataFrame:
    day_ok = pl.col("day_of_week").str.contains(r"^\d{1,2}$")
    body = body.with_columns(
        pl.when(day_ok).then(pl.col("day_of_week").cast(pl.Int64, strict=False)).alias("_day"),
        parse_time_of_day_us(pl.col("start_time_local")).alias("start_time_us"),
        parse_time_of_day_us(pl.col("end_time_local")).alias("end_time_us"),
    )
    body = body.with_columns(
        _first_reason(
            (
                pl.col("_day").is_null() | (pl.col("_day") > 6),
                "day of week must be an integer 0 (Monday) to 6 (Sunday)",
            ),
            (
                pl.col("start_time_us").is_null(),
                "bad start_time_local (expected HH:MM or HH:MM:SS[.ffffff], 00:00-23:59:59)",
            ),
            (
                pl.col("end_time_us").is_null(),
                "bad end_time_local (expected HH:MM or HH:MM:SS[.ffffff], 00:00-23:59:59)",
            ),
        ).alias("_reason")
    )
    return body.with_columns(pl.col("_day").cast(pl.Int8, strict=False).alias("day_of_week"))


# --- timezones ----------------------------------------------------------------------------


@cache
def is_known_timezone(name: str) -> bool:
    """True for IANA names that both zoneinfo and polars can convert with."""
    if name not in zoneinfo.available_timezones():
        return False
    try:
        pl.Series([0], dtype=pl.Datetime("us")).dt.replace_time_zone(name)
    except Exception:  # polars' tz database may lag behind the system's
        return False
    return True


def _parse_timezones(body: pl.DataFrame) -> pl.DataFrame:
    names = body.get_column("timezone_str").drop_nulls().unique().to_list()
    known = [n for n in names if is_known_timezone(n)]  # one check per distinct name
    return body.with_columns(
        _first_reason(
            (pl.col("timezone_str").is_null() | (pl.col("timezone_str") == ""), "missing timezone_str"),
            (
                ~pl.col("timezone_str").is_in(known),
                "unknown timezone name (expected an IANA name such as America/Chicago)",
            ),
        ).alias("_reason")
    )

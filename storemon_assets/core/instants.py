"""Instants as users write and read them: the report time T and ISO-8601 output."""

from __future__ import annotations

import time
from typing import overload

import polars as pl

from storemon_assets.core.parsing import FUTURE_TOLERANCE_US, excerpt, parse_timestamp_utc, timestamp_problem

# How instants are written (as SPEC §9 writes them): UTC with microseconds and Z; a store's wall
# clock the same without the Z, then its UTC offset (wall_clock_text).
UTC_TEXT = "%Y-%m-%dT%H:%M:%S%.6fZ"
LOCAL_TEXT = "%Y-%m-%dT%H:%M:%S%.6f"


def wall_clock_text(local_us: pl.Expr, utc_us: pl.Expr) -> pl.Expr:
    """An instant on a store's wall clock with its UTC offset, `2024-11-03T01:00:00.000000-06:00`,
    from its wall-clock and UTC microseconds (offset = local - UTC): unambiguous in the hour a
    clock goes back. Null where either is null."""
    offset_minutes = (local_us - utc_us) // 60_000_000
    sign = pl.when(offset_minutes < 0).then(pl.lit("-")).otherwise(pl.lit("+"))
    hh = (offset_minutes.abs() // 60).cast(pl.String).str.zfill(2)
    mm = (offset_minutes.abs() % 60).cast(pl.String).str.zfill(2)
    clock = pl.from_epoch(local_us, time_unit="us").dt.strftime(LOCAL_TEXT)
    return pl.format("{}{}{}:{}", clock, sign, hh, mm)


def now_us() -> int:
    """The current instant in microseconds since the epoch (UTC)."""
    return time.time_ns() // 1000


@overload
def format_instant(at_us: int) -> str: ...
@overload
def format_instant(at_us: None) -> None: ...
@overload
def format_instant(at_us: int | None) -> str | None: ...
def format_instant(at_us: int | None) -> str | None:
    """Microseconds since the epoch -> `2023-01-25T18:13:22.479220Z` (None stays None)."""
    if at_us is None:
        return None
    return pl.select(pl.from_epoch(pl.lit(at_us), time_unit="us").dt.strftime(UTC_TEXT)).item()


def parse_as_of(text: str | None) -> int | None:
    """`None`/'' -> latest poll (decided later); 'now' -> the current instant; else a timestamp,
    read by the same rules as a poll's (SPEC §1), and not more than an hour ahead of now."""
    if text is None or text.strip() == "":
        return None
    now_us = time.time_ns() // 1000
    if text.strip().lower() == "now":
        return now_us
    text = text.strip()
    value = pl.select(parse_timestamp_utc(pl.lit(text))).item()
    if value is None:
        problem = pl.select(timestamp_problem(pl.lit(text))).item().removeprefix("bad timestamp_utc")
        raise ValueError(
            f"as-of time {excerpt(text)} is not a timestamp{problem if problem.startswith(':') else ''} "
            "(expected e.g. 2023-01-25T18:13:22Z)"
        )
    if value > now_us + FUTURE_TOLERANCE_US:
        raise ValueError(f"as-of time {excerpt(text)} is in the future (more than 1 hour from now)")
    return value


def as_of_instant(text: str) -> str:
    """T as an as-of report's run tag and config carry it: ISO-8601 UTC, 'now' resolved to this
    moment (so every step of the run, and the tag, name the same instant).

    Raises ValueError for text that is not an instant (or is empty: an as-of report needs its T).
    """
    as_of_us = parse_as_of(text)
    if as_of_us is None:
        raise ValueError("an as-of report needs its T (ISO-8601 or 'now')")
    return format_instant(as_of_us)

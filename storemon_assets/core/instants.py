"""Instants as users write and read them: the report time T and ISO-8601 output."""

from __future__ import annotations

import time

import polars as pl

from storemon_assets.core.parsing import parse_timestamp_utc


def format_instant(at_us: int | None) -> str | None:
    """Microseconds since the epoch -> `2023-01-25T18:13:22.479220Z` (None stays None)."""
    if at_us is None:
        return None
    return pl.select(pl.from_epoch(pl.lit(at_us), time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).item()


def parse_as_of(text: str | None) -> int | None:
    """`None`/'' -> latest poll (decided later); 'now' -> the current instant; else a timestamp."""
    if text is None or text.strip() == "":
        return None
    if text.strip().lower() == "now":
        return time.time_ns() // 1000
    value = pl.select(parse_timestamp_utc(pl.lit(text.strip()))).item()
    if value is None:
        raise ValueError(f"as-of time {text!r} is not a timestamp (expected e.g. 2023-01-25T18:13:22Z)")
    return value

"""Realistic synthetic feeds for demos, tests and benchmarks (`storemon generate`).

Polls imitate the real feed: each store is polled about hourly at its own minute with a few
minutes of jitter, around the clock; some stores are polled only every few hours; a few polls
go missing. Outages arrive at random per store (some stores are flaky) and last from minutes
to hours, log-normally. Files use the real formats and quirks: 19-digit ids, the `day` header,
` UTC` timestamps with 1-6 digit fractions (trailing zeros dropped), and overnight hours split
at midnight. Given a real hours/timezones pair, it makes polls for exactly those stores.
Everything is drawn with numpy in whole arrays and is reproducible from the seed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from storemon_assets.core.feeds import HOURS, POLLS, TIMEZONES

POLLS_FILE, HOURS_FILE, TIMEZONES_FILE = "store_status.csv", "menu_hours.csv", "timezones.csv"
DEFAULT_END = dt.datetime(2023, 1, 25, 18, 13, 22, 479220)

# Shares of the real 2023 feed's timezones.
_ZONES = {
    "America/New_York": 0.60,
    "America/Los_Angeles": 0.24,
    "America/Chicago": 0.11,
    "America/Phoenix": 0.03,
    "America/Denver": 0.01,
    "America/Detroit": 0.005,
    "Pacific/Honolulu": 0.005,
}
_H = 3_600_000_000  # one hour in microseconds


@dataclass(frozen=True)
class GeneratedFeeds:
    polls: pl.DataFrame  # store_id, status, timestamp_utc (text, as in the feed)
    hours: pl.DataFrame  # text columns with the feed's own header
    timezones: pl.DataFrame

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {POLLS: out / POLLS_FILE, HOURS: out / HOURS_FILE, TIMEZONES: out / TIMEZONES_FILE}
        self.polls.write_csv(paths[POLLS])
        self.hours.write_csv(paths[HOURS])
        self.timezones.write_csv(paths[TIMEZONES])
        return paths


def generate_feeds(
    stores: int | None = 100,
    days: int = 8,
    seed: int = 0,
    end: dt.datetime = DEFAULT_END,
    hours_file: str | Path | None = None,
    timezones_file: str | Path | None = None,
) -> GeneratedFeeds:
    if days < 1:
        raise ValueError("--days must be at least 1")
    rng = np.random.default_rng(seed)
    if hours_file or timezones_file:
        hours, timezones = _real_stores(hours_file, timezones_file, stores, rng)
        store_ids = np.array(sorted(set(hours.get_column("store_id")) | set(timezones.get_column("store_id"))))
    else:
        if not stores or stores < 1:
            raise ValueError("--stores must be at least 1 without --hours/--timezones")
        store_ids = _store_ids(stores, rng)
        hours = _synthetic_hours(store_ids, rng)
        timezones = _synthetic_timezones(store_ids, rng)
    polls = _synthetic_polls(store_ids, days, end, rng)
    return GeneratedFeeds(polls, hours, timezones)


def _store_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    ids = rng.integers(10**17, 9 * 10**18, size=n * 2, dtype=np.int64)
    return np.unique(ids.astype(str))[:n]


def _read_text_csv(path: str | Path) -> pl.DataFrame:
    frame = pl.read_csv(path, infer_schema=False)
    if "store_id" not in frame.columns:
        raise ValueError(f"{Path(path).name}: no store_id column (header: {','.join(frame.columns)})")
    return frame


def _real_stores(hours_file, timezones_file, stores, rng) -> tuple[pl.DataFrame, pl.DataFrame]:
    hours = (
        _read_text_csv(hours_file)
        if hours_file
        else pl.DataFrame(
            schema={"store_id": pl.String, "day": pl.String, "start_time_local": pl.String, "end_time_local": pl.String}
        )
    )
    timezones = (
        _read_text_csv(timezones_file)
        if timezones_file
        else pl.DataFrame(schema={"store_id": pl.String, "timezone_str": pl.String})
    )
    if stores:
        everyone = np.array(sorted(set(hours.get_column("store_id")) | set(timezones.get_column("store_id"))))
        chosen = pl.Series(rng.choice(everyone, size=min(stores, len(everyone)), replace=False))
        hours = hours.filter(pl.col("store_id").is_in(chosen.implode()))
        timezones = timezones.filter(pl.col("store_id").is_in(chosen.implode()))
    return hours, timezones


def _synthetic_hours(store_ids: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """Weekly hours by store profile; about 15% of stores have none (open 24x7 by default)."""
    profile = rng.choice(5, size=len(store_ids), p=[0.15, 0.10, 0.45, 0.15, 0.15])
    frames = []
    days = np.arange(7)

    def rows(ids, start, end, weekdays=days):
        ids = np.asarray(ids)
        grid_ids = np.repeat(ids, len(weekdays))
        grid_days = np.tile(weekdays, len(ids))
        return pl.DataFrame(
            {
                "store_id": grid_ids.astype(str),
                "day": grid_days.astype(str),
                "start_time_local": start,
                "end_time_local": end,
            },
            schema=dict.fromkeys(("store_id", "day", "start_time_local", "end_time_local"), pl.String),
        )

    frames.append(rows(store_ids[profile == 1], "00:00:00", "23:59:00"))
    regular = store_ids[profile == 2]
    opens = rng.choice(["10:00:00", "11:00:00", "11:30:00"], size=len(regular))
    closes = rng.choice(["21:00:00", "22:00:00", "23:00:00", "20:30:00"], size=len(regular))
    for open_, close in sorted(set(zip(opens, closes, strict=True))):
        chosen = regular[(opens == open_) & (closes == close)]
        frames.append(rows(chosen, open_, close, np.arange(1, 7)))  # closed on Mondays
    late = store_ids[profile == 3]
    frames.append(rows(late, "11:00:00", "23:59:00"))
    frames.append(rows(late, "00:00:00", "02:00:00"))  # the real feed splits overnight at midnight
    split = store_ids[profile == 4]
    frames.append(rows(split, "11:00:00", "14:30:00"))
    frames.append(rows(split, "17:00:00", "22:00:00"))
    return pl.concat(frames).sort("store_id", "day", "start_time_local")


def _synthetic_timezones(store_ids: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """About 5% of stores get no timezone row (they default to America/Chicago)."""
    names = np.array(list(_ZONES))
    weights = np.array(list(_ZONES.values()))
    zones = rng.choice(names, size=len(store_ids), p=weights / weights.sum())
    keep = rng.random(len(store_ids)) >= 0.05
    return pl.DataFrame({"store_id": store_ids[keep], "timezone_str": zones[keep]})


def _synthetic_polls(store_ids: np.ndarray, days: int, end: dt.datetime, rng: np.random.Generator) -> pl.DataFrame:
    n = len(store_ids)
    end_us = int(end.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000 + end.microsecond
    start_us = end_us - days * 24 * _H
    # Most stores are polled hourly; one in ten only every 2-6 hours.
    period = np.where(rng.random(n) < 0.9, _H, rng.integers(2, 7, size=n) * _H)
    counts = (days * 24 * _H) // period
    store_index = np.repeat(np.arange(n), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    phase = rng.integers(0, _H, size=n)
    jitter = rng.normal(0, 3 * 60_000_000, size=len(step)).astype(np.int64)
    at = start_us + np.repeat(phase, counts) + step * np.repeat(period, counts) + jitter
    keep = (rng.random(len(at)) >= 0.03) & (at <= end_us) & (at > start_us)
    store_index, at = store_index[keep], at[keep]

    # Outages: a Poisson number per store (flaky stores have many), log-normal lengths
    # with a median of 40 minutes.
    rate_per_day = np.where(rng.random(n) < 0.1, 4.0, 0.6)
    outage_counts = rng.poisson(rate_per_day * (days + 1))
    outage_store = np.repeat(np.arange(n), outage_counts)
    outage_start = rng.integers(start_us - 24 * _H, end_us, size=len(outage_store))
    outage_length = (rng.lognormal(np.log(40 * 60), 1.0, size=len(outage_store)) * 1_000_000).astype(np.int64)
    span = end_us - start_us + 48 * _H  # keys keep each store's timeline apart
    base = start_us - 24 * _H
    order = np.argsort(outage_store * span + (outage_start - base))
    outage_key = (outage_store * span + (outage_start - base))[order]
    outage_end = (outage_start + outage_length)[order]
    poll_key = store_index * span + (at - base)
    latest = np.searchsorted(outage_key, poll_key, side="right") - 1
    in_outage = np.zeros(len(at), dtype=bool)
    has_outage = latest >= 0
    candidates = latest[has_outage]
    in_outage[has_outage] = (outage_store[order][candidates] == store_index[has_outage]) & (
        at[has_outage] < outage_end[candidates]
    )

    frame = pl.DataFrame(
        {
            "store_id": store_ids[store_index],
            "status": np.where(in_outage, "inactive", "active"),
            "at_us": at,
        }
    )
    return (
        frame.with_columns(feed_timestamp(pl.col("at_us")).alias("timestamp_utc"))
        .sample(fraction=1.0, shuffle=True, seed=int(rng.integers(2**31)))
        .select("store_id", "status", "timestamp_utc")
    )


def feed_timestamp(at_us: pl.Expr) -> pl.Expr:
    """`2023-01-22 12:09:39.388884 UTC`, fraction without trailing zeros (none when zero)."""
    moment = pl.from_epoch(at_us, time_unit="us")
    fraction = moment.dt.strftime("%6f").str.strip_chars_end("0")
    return pl.concat_str(
        moment.dt.strftime("%Y-%m-%d %H:%M:%S"),
        pl.when(fraction != "").then(pl.lit(".") + fraction).otherwise(pl.lit("")),
        pl.lit(" UTC"),
    )

"""Store history from the database: daily values (SPEC §8), the monthly SLA, and retention
(SPEC §11). One code path for Dagster (defs/history.py), the CLI and the API.

Daily values are *stored* (packed, table store_daily_packed) and *computed* by the same function:
`daily_history` takes every stored row that provably holds for the requested T and computes
the others from the polls, exactly as the report does (each store's observations of the range
and its carry-in before it, however old). A stored row computed as of T' holds for T when
  - nothing loaded after it was computed can have changed it: no polls file whose first poll
    is at or before the instant it depends on up to (its final_from_us when final, else T'),
    and no hours, timezone or special-hours file (unless its polls were pruned: frozen, below);
  - and it is the value for T: T == T', or the row is final (final_from_us <= T') and
    final_from_us <= T (core/daily.py says why that suffices).
So a refresh at T makes the last dates hold for T, finished dates stay valid as they are, and
`storemon daily --days 90` reads 90 days of stored rows without touching a poll.

Pruning keeps enough polls that every date not frozen can still be computed exactly; see
`prune` and docs/history.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import sqlalchemy as sa

from storemon_assets.core.access import rows_of_stores
from storemon_assets.core.business_time import US_PER_DAY, store_zones, utc_to_local
from storemon_assets.core.daily import (
    DAILY_VALUES_SCHEMA,
    current_daily_values,
    daily_csv_frame,
    daily_values,
    fleet_uptime_pct,
    iso_dates,
    local_days,
    refresh_ranges,
    requested_dates,
    uptime_share,
    utc_date,
)
from storemon_assets.core.feeds import DEFAULT_TIMEZONE, POLLS
from storemon_assets.core.instants import format_instant, now_us
from storemon_assets.core.tables import STORE_TIMEZONES
from storemon_assets.core.uptime import (
    business_intervals_covering,
    observations,
    polls_observations,
    utc_days,
    window_utc_days,
)
from storemon_assets.db.history import (
    STORED_DAILY_SCHEMA,
    delete_old_polls,
    ledger_arrivals,
    oldest_poll_us,
    read_daily,
    reclaim_space,
    store_key_of,
    write_daily,
)
from storemon_assets.db.queries import (
    KeyRange,
    current_report_info,
    data_version,
    last_poll_before,
    polled_stores,
    read_polls,
    read_polls_in_ranges,
    read_table,
    read_weekly_schedules,
    report_time_us,
    retention_cutoff,
)
from storemon_assets.outputs import written_in_place
from storemon_assets.progress import QUIET, Progress

# storemon_assets.service (the report's code, and through it the loading and publication
# modules) is imported only where values are computed: `storemon daily` reading stored rows
# that all hold starts sooner without it (docs/history.md).

DEFAULT_DAYS = 90
# Dates computed together: 15 days of the real fleet's polls (~4.7 M) at a time keeps memory
# flat however long the range, and each chunk's reads are one range per store. Fewer stores
# take longer chunks of the same size in store-days (a few stores' 90 days are one chunk: each
# chunk pays its reads and its carry-in searches once per store).
CHUNK_DAYS = 15
CHUNK_STORE_DAYS = 15 * 13_600
# Stores whose keys are spread over more than this many keys each are read one listed range
# each; otherwise one read of their key range (several times faster per poll).
SPARSE_KEYS = 8


# T moving with no file loaded refreshes the daily partitions at most this often.
REFRESH_EVERY_SECONDS = 3_600


@dataclass(frozen=True)
class DailyRefresh:
    """What one tick of the daily refresh sensor asks for, and the cursor it leaves."""

    ranges: list[tuple[dt.date, dt.date]]  # contiguous partition ranges, one run each
    as_of_us: int
    watermark_us: int  # the newest ledger arrival taken into account
    polls_files: int  # polls files loaded since the last refresh
    other_files: int  # hours, timezones or special-hours files: every recent date may have changed

    def cursor(self, now: float) -> dict:
        return {"as_of_us": self.as_of_us, "ingested_until_us": self.watermark_us, "requested_at": now}


def daily_refresh(
    as_of_us: int, arrivals: pl.DataFrame, cursor: dict, now: float, first_partition: dt.date, today: dt.date
) -> DailyRefresh | None:
    """The dates to refresh after the files loaded since the cursor (`arrivals`: ledger_arrivals),
    or when T moved and the last refresh is REFRESH_EVERY_SECONDS old; None when neither
    (core/daily.py:refresh_ranges says which dates)."""
    arrived = arrivals.filter(pl.col("ingested_at_us") > cursor.get("ingested_until_us", 0))
    files = arrived.filter(pl.col("kind") == POLLS)
    moved = as_of_us != cursor.get("as_of_us")
    if arrived.is_empty() and not (moved and now - cursor.get("requested_at", 0) >= REFRESH_EVERY_SECONDS):
        return None
    ranges = refresh_ranges(as_of_us, files, first_partition, today, schedule_changed=arrived.height > files.height)
    watermark = max(cursor.get("ingested_until_us", 0), arrived.get_column("ingested_at_us").max() or 0)
    return DailyRefresh(ranges, as_of_us, watermark, files.height, arrived.height - files.height)


@dataclass(frozen=True)
class DailyHistory:
    """Daily values as of T: DAILY_VALUES_SCHEMA with text store ids, sorted by store and date."""

    as_of_us: int | None
    values: pl.DataFrame
    stored_rows: int = 0  # of them, read from the table
    computed_rows: int = 0  # computed from the polls (and written back when asked)

    def csv_frame(self, *, decimals: bool = False) -> pl.DataFrame:
        return daily_csv_frame(self.values, decimals=decimals)

    def figures(self) -> dict[str, str | int | float]:
        """What Dagster's pages plot across materialisations: the fleet's uptime (uptime over uptime
        + downtime, weighted by business time) over the dates and on the newest one, when anything
        was observed, and the rows kept or computed."""
        newest = self.values.filter(pl.col("local_date") == pl.col("local_date").max())
        figures = {
            "as_of": format_instant(self.as_of_us) or "(no polls loaded)",
            "fleet_uptime_pct": fleet_uptime_pct(self.values),
            "fleet_uptime_pct_newest_date": fleet_uptime_pct(newest),
            "store_days": self.values.height,
            "rows_computed": self.computed_rows,
            "rows_already_holding": self.stored_rows,
        }
        return {name: value for name, value in figures.items() if value is not None}


def empty_values() -> pl.DataFrame:
    return pl.DataFrame(schema=DAILY_VALUES_SCHEMA)


def daily_history(
    engine: sa.Engine,
    as_of_us: int | None = None,
    *,
    days: int | None = DEFAULT_DAYS,
    first_date: dt.date | None = None,
    last_date: dt.date | None = None,
    store_id: str | None = None,
    use_stored: bool = True,
    write: bool = False,
    progress: Progress = QUIET,
) -> DailyHistory:
    """Daily values as of T (default: the latest poll) of every store polled by T (or one).

    Dates: with `first_date`/`last_date`, those local dates (a Dagster partition range, a
    month); else each store's dates whose day meets [T - days, T). Only days that start
    before T have values. `use_stored`: take stored rows that hold for T (module docstring);
    `write`: store the computed ones, as of T.
    """
    computed_at_us = now_us()  # before any read: a file loaded during the computation counts as later
    with progress.phase("stores") as phase:
        # T the latest poll: every store has a poll by T, so the stores table lists them without
        # a seek per store for its first poll. (T and the stores are two reads: a polls file
        # bringing new stores, committed between them, adds those stores with no observation;
        # the next run at the new T is exact. One snapshot for both would close that window.)
        at_latest_poll = as_of_us is None
        as_of_us = report_time_us(engine, as_of_us)
        if as_of_us is None:
            phase.detail = "no polls loaded"
            return DailyHistory(None, empty_values())
        keys = None
        if store_id is not None:  # one store: its own key range only (a store page's request)
            key = store_key_of(engine, store_id)
            if key is None:
                return DailyHistory(as_of_us, empty_values())
            keys = KeyRange(key, key)
        # In text id order: the result's order, reached by sorting integers once at the end (in_store_order).
        stores = polled_stores(engine, None if at_latest_poll else as_of_us, keys).sort("store_id")
        zones = store_timezones(engine, stores, keys)  # the schedules only when something is computed
        # Each store's dates; none after the local date of the instant just before T (those days
        # start at or after T, so nothing of them is before T).
        latest = requested_dates(zones, as_of_us, days or DEFAULT_DAYS)
        if first_date is not None and last_date is not None:
            latest = latest.with_columns(
                pl.lit(first_date).alias("first_date"),
                pl.min_horizontal(pl.lit(last_date), "last_date").alias("last_date"),
            )
        ranges = latest.filter(pl.col("first_date") <= pl.col("last_date")).join(
            stores.select("store_id", "store_key"), on="store_id"
        )
        expected = ranges.select(
            "store_key", ((pl.col("last_date") - pl.col("first_date")).dt.total_days() + 1).alias("days")
        )
        phase.detail = f"{stores.height:,} polled by T, {expected.get_column('days').sum() or 0:,} store-days"
    if ranges.is_empty():
        return DailyHistory(as_of_us, empty_values())
    usable = pl.DataFrame(schema=STORED_DAILY_SCHEMA)
    if use_stored:
        with progress.phase("stored values") as phase:
            stored = read_daily(
                engine,
                ranges.get_column("first_date").min(),
                ranges.get_column("last_date").max(),
                keys.first if keys is not None else None,
            )
            # Each row's store's dates looked up by key inside the filter (no joined copy of the
            # rows), and the holding rule in the same filter: the 1.2 M rows are copied once.
            requested = pl.col("local_date").is_between(
                by_store_key(ranges, "first_date", stored), by_store_key(ranges, "last_date", stored)
            )
            holds = holding(stored, as_of_us, ledger_arrivals(engine), retention_cutoff(engine))
            keep = stored.select(requested & holds).to_series()
            usable = stored if keep.all() else stored.filter(keep)  # all (the usual case): no copy
            phase.detail = f"{usable.height:,} of {stored.height:,} stored rows read are requested and hold for T"
    # Only stores missing a date need their days laid out (UTC bounds: a time-zone conversion each).
    # The usable rows are distinct requested (store, date) pairs: as many as requested is all of them.
    if usable.height == (expected.get_column("days").sum() or 0):
        incomplete = ranges.clear().drop("store_key")
    else:
        complete = (
            usable.group_by("store_key").len().join(expected, on="store_key").filter(pl.col("len") == pl.col("days"))
        )
        incomplete = ranges.join(complete, on="store_key", how="anti").drop("store_key")
    wanted = local_days(zones, incomplete).filter(pl.col("day_start_us") < as_of_us)
    pending = (
        wanted.join(
            usable.select("store_key", "local_date").join(stores.select("store_key", "store_id"), on="store_key"),
            on=["store_id", "local_date"],
            how="anti",
        )
        if wanted.height
        else wanted
    )
    computed = pl.DataFrame(schema=STORED_DAILY_SCHEMA)
    if not pending.is_empty():
        schedule = read_weekly_schedules(engine, stores.get_column("store_id"), keys)
        values = compute_daily(engine, stores, schedule, pending, as_of_us, progress)
        computed = values.with_columns(
            pl.lit(as_of_us).alias("as_of_us"), pl.lit(computed_at_us).alias("computed_at_us")
        )
        if write:
            with progress.phase("store values") as phase:
                write_daily(engine, computed)
                phase.detail = f"{computed.height:,} rows"
    columns = [*STORED_DAILY_SCHEMA]
    found = (
        usable.select(columns) if computed.is_empty() else pl.concat([usable.select(columns), computed.select(columns)])
    )
    values = in_store_order(found, stores)
    return DailyHistory(as_of_us, values, usable.height, computed.height)


def by_store_key(frame: pl.DataFrame, column: str, rows: pl.DataFrame) -> pl.Expr:
    """`frame`'s `column` for each of `rows` by its store_key (null for a store not in `frame`):
    one array indexed by key, gathered (1.2 M rows: a quarter of the CPU of a hash lookup)."""
    size = max(frame.get_column("store_key").max() or 0, rows.get_column("store_key").max() or 0) + 1
    dense = pl.repeat(None, size, dtype=frame.schema[column], eager=True)
    dense.scatter(frame.get_column("store_key"), frame.get_column(column))
    return pl.lit(dense).gather(pl.col("store_key"))


def in_store_order(values: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """DAILY_VALUES_SCHEMA of stored-form values (store keys), sorted by text store id then date.

    `stores`: store_key, store_id sorted by store_id, holding every key of `values`; a store has
    one value per date. Each value's rank (its store's place in that order) is looked up by key
    in an array, and its place in the result is rank x dates + date: where the values span few
    dates beyond their own count (90 days of a fleet, a store page), each value is put in its
    slot of an array of them all and the filled slots read in order, with no sort (several times
    cheaper than an integer sort of the same slots, and than a join and a text sort).
    Only the result's columns are gathered.
    """
    keys = stores.get_column("store_key").to_numpy()
    rank_of_key = np.zeros(int(keys.max()) + 1 if keys.size else 1, dtype=np.int32)
    rank_of_key[keys] = np.arange(keys.size, dtype=np.int32)
    rank = rank_of_key[values.get_column("store_key").to_numpy()]
    days = values.get_column("local_date").cast(pl.Int32).to_numpy()
    first_day = int(days.min()) if days.size else 0
    span = int(days.max()) - first_day + 1 if days.size else 1
    slot = rank.astype(np.int64) * span + (days - first_day)
    if keys.size * span <= 4 * max(values.height, 1):
        place = np.full(keys.size * span, -1, dtype=np.int32)  # value counts fit: a store-day each
        place[slot] = np.arange(values.height, dtype=np.int32)
        order = place[place >= 0]
        assert order.size == values.height, "a store has two values of one date"
    else:  # a long, sparse range (a backfill of few stores' dates): sort the slots
        order = np.argsort(slot, kind="stable")
    columns = [name for name in DAILY_VALUES_SCHEMA if name != "store_id"]
    return (
        values.select(columns)[order]
        .with_columns(stores.get_column("store_id").gather(rank[order]).alias("store_id"))
        .select(list(DAILY_VALUES_SCHEMA))
    )


def store_current_daily(
    engine: sa.Engine,
    obs: pl.DataFrame,
    intervals: pl.DataFrame,
    schedule: pl.DataFrame,
    as_of_us: int,
    computed_at_us: int,
) -> int:
    """Store, as of T, the daily values of the dates an hourly refresh asks for, from a report's
    observations and status intervals (keyed by store key, as build_report holds them):
    core/daily.py, current_daily_values. `computed_at_us`: taken before the report read
    anything. Returns the rows stored."""
    values = current_daily_values(obs, intervals, store_zones(schedule), as_of_us)
    return write_daily(
        engine,
        values.rename({"store_id": "store_key"}).with_columns(
            pl.lit(as_of_us).alias("as_of_us"), pl.lit(computed_at_us).alias("computed_at_us")
        ),
    )


def store_timezones(engine: sa.Engine, stores: pl.DataFrame, keys: KeyRange | None) -> pl.DataFrame:
    """store_id, timezone of the stores (DEFAULT_TIMEZONE when none is known), as the schedules
    have them (core/business_time.py: weekly_schedule), without reading the hours."""
    known = read_table(engine, STORE_TIMEZONES, ("store_id", "timezone_str"), keys)
    return (
        stores.select("store_id")
        .join(known.select("store_id", pl.col("timezone_str").alias("timezone")), on="store_id", how="left")
        .with_columns(pl.col("timezone").fill_null(DEFAULT_TIMEZONE))
    )


# The fleet's (or a tenant's) uptime share over the last days, per (database, T, stores, data
# version): /summary asks on every page load, and the answer only changes when T, the files or
# the stored rows do.
_UPTIME_SHARES: dict[tuple, float | None] = {}


def uptime_share_of_last_days(
    engine: sa.Engine, as_of_us: int, days: int = 30, store_ids: frozenset[str] | None = None
) -> float | None:
    """All stores' (or only `store_ids'`, a tenant's) uptime / (uptime + downtime) over the dates
    whose day meets [T - days, T), weighted by business time, 0-1 (None: nothing observed). Daily
    values as `daily_history`."""
    from storemon_assets.db.history import stored_daily_count

    key = (
        engine.url.render_as_string(hide_password=True),
        as_of_us,
        days,
        store_ids,
        data_version(engine),
        stored_daily_count(engine),
    )
    if key not in _UPTIME_SHARES:
        share = uptime_share(rows_of_stores(daily_history(engine, as_of_us, days=days).values, store_ids))
        if len(_UPTIME_SHARES) > 64:
            _UPTIME_SHARES.clear()
        _UPTIME_SHARES[key] = round(share, 4) if share is not None else None
    return _UPTIME_SHARES[key]


def holding(stored: pl.DataFrame, as_of_us: int, arrivals: pl.DataFrame, cutoff_us: int | None) -> pl.Expr:
    """Whether each stored row holds for T (the module docstring's rule): a filter predicate on
    `stored`, vectorised.

    `arrivals`: every loaded file's kind, ingested_at_us and (polls) first_poll_us.
    """
    if stored.is_empty():
        return pl.lit(True)
    final = pl.col("final_from_us").is_not_null() & (pl.col("final_from_us") <= pl.col("as_of_us"))
    depends_until = pl.when(final).then(pl.col("final_from_us")).otherwise(pl.col("as_of_us"))
    frozen = final & (pl.col("final_from_us") < (cutoff_us if cutoff_us is not None else -(2**62)))
    polls = arrivals.filter(pl.col("kind") == POLLS)
    # For each row: the earliest first poll among polls files loaded after it was computed.
    later = (
        polls.sort("ingested_at_us", descending=True)
        .select("ingested_at_us", pl.col("first_poll_us").fill_null(-(2**62)).cum_min().alias("_earliest_later"))
        .sort("ingested_at_us")
    )
    schedule_changed_at = arrivals.filter(pl.col("kind") != POLLS).get_column("ingested_at_us").max()
    # Per write (rows share their computed_at_us): a small as-of join, then each row's write
    # looked up inside the filter (no joined copy of the rows).
    stamps = (
        stored.select("computed_at_us")
        .unique()
        .sort("computed_at_us")
        .join_asof(
            later,
            left_on="computed_at_us",
            right_on="ingested_at_us",
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("_earliest_later").is_not_null())
    )
    earliest_later = pl.col("computed_at_us").replace_strict(
        stamps.get_column("computed_at_us"), stamps.get_column("_earliest_later"), default=None
    )
    polls_changed = pl.lit(False) if stamps.is_empty() else (earliest_later <= depends_until).fill_null(False)
    schedule_changed = (
        pl.lit(False) if schedule_changed_at is None else (pl.col("computed_at_us") < schedule_changed_at) & ~frozen
    )
    for_t = (pl.col("as_of_us") == as_of_us) | (final & (pl.col("final_from_us") <= as_of_us))
    return for_t & ~polls_changed & ~schedule_changed


def compute_daily(
    engine: sa.Engine,
    stores: pl.DataFrame,
    schedule: pl.DataFrame,
    pending: pl.DataFrame,
    as_of_us: int,
    progress: Progress = QUIET,
) -> pl.DataFrame:
    """Daily values of the pending (store, date) days (DAY_SCHEMA rows), from the polls: as
    DAILY_VALUES_SCHEMA with the stores' keys (store_key) for their text ids, as they are stored.

    Dates go CHUNK_DAYS at a time, or more when few stores are pending (CHUNK_STORE_DAYS
    store-days at most per chunk). Per chunk, the stores with a pending date in it are
    computed over all of their dates of the chunk (core/daily.py wants each store's dates
    contiguous), reading the chunk's polls plus margins, each store's carry-in before the
    chunk and its first observation after it (the day's last instants may be nearest to it).
    """
    from storemon_assets.service import keyed_by_store_key

    by_key = stores.select("store_key", "store_id")
    keyed_schedule = keyed_by_store_key(schedule, stores)
    first, last = pending.get_column("local_date").min(), pending.get_column("local_date").max()
    chunk_days = max(CHUNK_DAYS, CHUNK_STORE_DAYS // max(pending.get_column("store_id").n_unique(), 1))
    zones = store_zones(schedule)
    parts = []
    chunk_start = first
    while chunk_start <= last:
        chunk_end = min(last, chunk_start + dt.timedelta(days=chunk_days - 1))
        in_chunk = pending.filter(pl.col("local_date").is_between(chunk_start, chunk_end))
        if not in_chunk.is_empty():
            with progress.phase(f"compute {chunk_start}..{chunk_end}") as phase:
                spans = in_chunk.group_by("store_id").agg(
                    pl.col("local_date").min().alias("first_date"), pl.col("local_date").max().alias("last_date")
                )
                days = local_days(zones, spans).filter(pl.col("day_start_us") < as_of_us)
                chunk_stores = by_key.join(spans.select("store_id"), on="store_id")
                values = _chunk_values(engine, chunk_stores, keyed_schedule, days, as_of_us)
                wanted = in_chunk.join(by_key, on="store_id").select("store_key", "local_date")
                parts.append(values.join(wanted, on=["store_key", "local_date"]))
                phase.detail = f"{chunk_stores.height:,} stores, {parts[-1].height:,} store-days"
        chunk_start = chunk_end + dt.timedelta(days=1)
    if not parts:
        return empty_values().rename({"store_id": "store_key"}).cast({"store_key": pl.Int32})
    return pl.concat(parts)  # in no order: daily_history sorts (in_store_order)


def _chunk_values(
    engine: sa.Engine, stores: pl.DataFrame, keyed_schedule: pl.DataFrame, days: pl.DataFrame, as_of_us: int
) -> pl.DataFrame:
    """daily_values of `days` (text ids) computed with the stores' integer keys, and keyed by
    them (store_key) as they are stored."""
    from storemon_assets.service import CARRY_IN_MARGIN_US, _older_carry_ins, keyed_by_store_key, keyed_polls

    start_us = days.get_column("day_start_us").min()
    end_us = min(as_of_us, days.get_column("day_end_us").max())
    read_from, read_to = start_us - CARRY_IN_MARGIN_US, min(as_of_us, end_us + CARRY_IN_MARGIN_US)
    window = keyed_polls(_read_stores_polls(engine, stores, read_from, read_to))
    store_keys = stores.get_column("store_key")
    business = business_intervals_covering(
        keyed_schedule,
        pl.concat([utc_days(window, "polled_at_us"), window_utc_days(store_keys, start_us, end_us)]).unique(),
    )
    obs = observations(window, business)
    # Carry-ins: stores with no observation before the chunk among the polls read.
    found = obs.filter(pl.col("at_us") < start_us).get_column("store_id").unique()
    pending = stores.filter(~pl.col("store_key").is_in(found.implode())).select(
        "store_key", pl.lit(read_from).alias("before_us")
    )
    carry_ins, _, _ = _older_carry_ins(engine, pending, keyed_schedule)
    # Carry-outs: the first observation at or after the chunk's end, when not among those read.
    extra = []
    if read_to < as_of_us:
        found = obs.filter(pl.col("at_us") >= end_us).get_column("store_id").unique()
        missing = stores.filter(~pl.col("store_key").is_in(found.implode())).select(
            "store_key", pl.lit(read_to + 1).alias("first_us"), pl.lit(as_of_us).alias("last_us")
        )
        later = keyed_polls(read_polls_in_ranges(engine, missing))
        later_obs = polls_observations(later, keyed_schedule)
        extra.append(later_obs.filter(pl.col("at_us") == pl.col("at_us").min().over("store_id")))
    obs = pl.concat([obs, *carry_ins, *extra]).sort("store_id", "at_us")
    keyed_days = keyed_by_store_key(days, stores)
    return daily_values(obs, business, keyed_days, as_of_us).rename({"store_id": "store_key"})


def _read_stores_polls(engine: sa.Engine, stores: pl.DataFrame, first_us: int, last_us: int) -> pl.DataFrame:
    """Polls of [first, last] of these stores: one read of the key range that holds them all
    (one primary-key range per store), filtered; stores scattered thinly over the keys are read
    one listed range each instead (slower per poll, but no stores in between)."""
    keys = stores.get_column("store_key")
    if (keys.max() - keys.min() + 1) > SPARSE_KEYS * keys.len():
        ranges = stores.select("store_key", pl.lit(first_us).alias("first_us"), pl.lit(last_us).alias("last_us"))
        return read_polls_in_ranges(engine, ranges)
    polls = read_polls(engine, first_us, last_us, KeyRange(keys.min(), keys.max()))
    return (
        polls
        if polls.get_column("store_key").n_unique() == keys.len()
        else polls.filter(pl.col("store_key").is_in(keys.implode()))
    )


def write_daily_csv(history: DailyHistory, target: Path) -> None:
    """The SPEC §8 CSV, written atomically (2 decimals, sorted by store then date). The minutes
    are made while the file is written, a batch of rows at a time (streaming): 1.2 M rows'
    decimal columns are never all in memory (~150 MB less to allocate and fault in)."""
    values = history.values
    dates = iso_dates(values.get_column("local_date")).alias("local_date")
    write_csv_atomically(daily_csv_frame(values.lazy().with_columns(dates), decimals=True), target)


def write_csv_atomically(frame: pl.DataFrame | pl.LazyFrame, target: Path) -> None:
    """A temporary file beside `target`, then a rename; a target that is not a regular file
    (/dev/null, a pipe) is written in place (outputs.written_in_place)."""
    import os

    if written_in_place(target):
        frame.lazy().sink_csv(target, float_precision=2)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    frame.lazy().sink_csv(temporary, float_precision=2)
    temporary.replace(target)


# --- retention (SPEC §11) ----------------------------------------------------------------------


@dataclass(frozen=True)
class PruneOutcome:
    """What a prune did; `cutoff_us` None when there was nothing to prune (no polls)."""

    cutoff_us: int | None
    daily_rows_computed: int = 0
    polls_deleted: int = 0
    space: str = ""

    def describe(self) -> str:
        from storemon_assets.core.instants import format_instant

        if self.cutoff_us is None:
            return "nothing to prune: no polls loaded"
        return (
            f"cutoff {format_instant(self.cutoff_us)}: {self.daily_rows_computed:,} daily rows stored first, "
            f"{self.polls_deleted:,} polls deleted; {self.space}"
        )


def prune(
    engine: sa.Engine, retention_days: int, as_of_us: int | None = None, progress: Progress = QUIET
) -> PruneOutcome:
    """Delete polls older than T - retention (T: the latest poll) without changing any answer for
    a T after the cutoff's week. Each step is one transaction and the steps can be repeated, so a
    prune killed at any moment leaves a consistent database that the next prune completes:

    1. the cutoff is put in force (never moved back): from now on a load rejects polls older than
       it, so nothing can be added behind the data being removed;
    2. the daily values of every date from the oldest poll's (or T - 90 days) to the cutoff's
       are stored as of T (rows that already hold are kept);
    3. each store's polls before min(cutoff, local midnight starting the date of its carry-in)
       are deleted, except its carry-in (newest observation before the cutoff), its newest
       observation before that midnight, and its newest poll. Keeping the carry-in's whole date
       (and the observation before it) keeps that date computable; every earlier date's stored
       row is final before the cutoff (docs/history.md);
    4. freed space is handed back (SQLite incremental vacuum).
    """
    from storemon_assets.db.history import raise_retention_cutoff
    from storemon_assets.settings import MIN_RETENTION_DAYS

    if retention_days < MIN_RETENTION_DAYS:
        raise ValueError(
            f"retention of {retention_days} days refused: a report needs its week and a day, "
            f"so keep at least {MIN_RETENTION_DAYS} days"
        )
    as_of_us = report_time_us(engine, as_of_us)
    if as_of_us is None:
        return PruneOutcome(None)
    oldest_us = oldest_poll_us(engine)
    if oldest_us is None or oldest_us >= as_of_us - retention_days * US_PER_DAY:
        return PruneOutcome(as_of_us - retention_days * US_PER_DAY, space="no poll is older than the cutoff")
    with progress.phase("cutoff") as phase:
        cutoff_us = raise_retention_cutoff(engine, as_of_us - retention_days * US_PER_DAY)
        phase.detail = f"{cutoff_us}"
    with progress.phase("daily values") as phase:
        # Every date whose polls go, and at least the last 90 days (SPEC §8): from the oldest
        # poll's date, or T - 90 days if earlier (a day early, for zones behind UTC), to the day
        # after the cutoff's (zones ahead of it).
        first = utc_date(min(oldest_us, as_of_us - DEFAULT_DAYS * US_PER_DAY)) - dt.timedelta(days=1)
        last = utc_date(cutoff_us) + dt.timedelta(days=1)
        kept = daily_history(engine, as_of_us, first_date=first, last_date=last, write=True)
        phase.detail = f"{kept.computed_rows:,} computed and stored, {kept.stored_rows:,} held already"
    with progress.phase("plan") as phase:
        plan = prune_plan(engine, cutoff_us)
        phase.detail = f"{plan.height:,} stores"
    with progress.phase("delete polls") as phase:
        deleted = delete_old_polls(engine, plan)
        phase.detail = f"{deleted:,} polls"
    with progress.phase("reclaim space") as phase:
        space = reclaim_space(engine)
        phase.detail = space
    return PruneOutcome(cutoff_us, kept.computed_rows, deleted, space)


def prune_plan(engine: sa.Engine, cutoff_us: int) -> pl.DataFrame:
    """Per store: store_key, before_us (polls before it go) and keep_1..keep_3 (kept anyway)."""
    from storemon_assets.service import keyed_by_store_key

    stores = polled_stores(engine, None)
    schedule = read_weekly_schedules(engine, stores.get_column("store_id"))
    keyed = keyed_by_store_key(schedule, stores)
    everyone = stores.select("store_key")
    carry_in = _newest_observations_before(engine, everyone.with_columns(pl.lit(cutoff_us).alias("before_us")), keyed)
    # The local midnight that starts the carry-in's date, in the store's zone.
    zones = keyed_by_store_key(store_zones(schedule), stores)
    located = utc_to_local(
        carry_in.rename({"store_key": "store_id"})
        .join(zones, on="store_id", how="left")
        .with_columns(pl.col("timezone").fill_null(DEFAULT_TIMEZONE))
    ).select("store_id", pl.col("local").dt.date().alias("first_date"), pl.col("local").dt.date().alias("last_date"))
    starts = local_days(zones, located).select(pl.col("store_id").cast(pl.Int32).alias("store_key"), "day_start_us")
    before_day = _newest_observations_before(engine, starts.rename({"day_start_us": "before_us"}), keyed)
    newest = last_poll_before(engine, everyone.with_columns(pl.lit(2**62).alias("before_us")))
    return (
        everyone.join(starts, on="store_key", how="left")
        .join(carry_in.rename({"at_us": "keep_1"}), on="store_key", how="left")
        .join(before_day.rename({"at_us": "keep_2"}), on="store_key", how="left")
        .join(newest.rename({"last_us": "keep_3"}), on="store_key", how="left")
        .select(
            "store_key",
            pl.min_horizontal(pl.col("day_start_us").fill_null(cutoff_us), pl.lit(cutoff_us)).alias("before_us"),
            "keep_1",
            "keep_2",
            "keep_3",
        )
    )


def _newest_observations_before(engine: sa.Engine, cursors: pl.DataFrame, keyed_schedule: pl.DataFrame) -> pl.DataFrame:
    """store_key, at_us: each store's newest observation strictly before its before_us (stores
    without one are left out), found as the report finds carry-ins."""
    from storemon_assets.service import _older_carry_ins

    found, _, _ = _older_carry_ins(engine, cursors.select("store_key", "before_us"), keyed_schedule)
    if not found:
        return pl.DataFrame(schema={"store_key": pl.Int32, "at_us": pl.Int64})
    return (
        pl.concat(found)
        .group_by("store_id")
        .agg(pl.col("at_us").max())
        .select(pl.col("store_id").cast(pl.Int32).alias("store_key"), "at_us")
    )


def retention(
    engine: sa.Engine, reports_dir: Path, retention_days: int, keep_days: int, progress: Progress = QUIET
) -> list[str]:
    """Retention (SPEC §11), as the daily schedule and `storemon db prune` run it: prune the polls
    older than `retention_days` (0 keeps every poll), then delete the run reports older than
    `keep_days`. Says what each step did, a line each."""
    from storemon_assets.settings import RETENTION_DAYS

    pruned = prune(engine, retention_days, progress=progress).describe() if retention_days else None
    removed = delete_old_run_reports(engine, reports_dir, keep_days)
    return [
        pruned or f"{RETENTION_DAYS.name} is 0: every poll is kept",
        f"{len(removed)} run report(s) older than {keep_days} days deleted",
    ]


def delete_old_run_reports(engine: sa.Engine, reports_dir: Path, keep_days: int) -> list[Path]:
    """`delete_old_report_files`, keeping the copy of the report the database holds as current."""
    info = current_report_info(engine)
    return delete_old_report_files(reports_dir, keep_days, current_report_id=info["report_id"] if info else None)


def delete_old_report_files(
    reports_dir: Path, keep_days: int, now_s: float | None = None, current_report_id: str | None = None
) -> list[Path]:
    """Delete the per-run report copies `<report_id>.csv` last written more than `keep_days`
    ago (issue #20): regular CSV files directly in the reports folder, never
    combined_report.csv nor the current report's own copy (publication repairs the combined
    CSV from it after a crash), nor hidden temporary files."""
    import time

    from storemon_assets.service import COMBINED_REPORT_NAME

    if not reports_dir.is_dir():
        return []
    limit = (time.time() if now_s is None else now_s) - keep_days * 86_400
    deleted = []
    for path in sorted(reports_dir.glob("*.csv")):
        kept = (COMBINED_REPORT_NAME, f"{current_report_id}.csv")
        if path.name in kept or path.name.startswith(".") or not path.is_file() or path.is_symlink():
            continue
        if path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted

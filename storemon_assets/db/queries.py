"""Every read storemon makes of its database, returning polars frames typed by `core/tables.py`:
the reads a report needs, through the engine's reader (`db/readers.py`: SQLite or PostgreSQL,
chosen once per engine), and the API's small indexed lookups.

Poll reads are bounded by time and, optionally, by a range of store keys (a report shard):
the polls table's primary key is (store key, instant), so each store's polls in a time range
are one range of that index, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import polars as pl
import sqlalchemy as sa

from storemon_assets.core.business_time import weekly_schedule
from storemon_assets.core.feeds import FEED_KINDS
from storemon_assets.core.shards import StoreShard, cut_points, shards_from_cuts
from storemon_assets.core.tables import (
    BUSINESS_HOURS,
    CURRENT_REPORT,
    CURRENT_REPORT_INFO,
    INGESTED_FILES,
    REJECTED_ROW_COUNTS,
    RETENTION_STATE,
    SPECIAL_HOURS,
    STORE_INCIDENTS,
    STORE_STATUS_INTERVALS,
    STORE_STATUS_NOW,
    STORE_TIMEZONES,
    STORES,
    Table,
)
from storemon_assets.db.readers import (
    LAST_POLL_SCHEMA,
    POLL_READ_SCHEMA,
    KeyRange,
    reader_for,
)
from storemon_assets.db.readers import fetch as _fetch
from storemon_assets.db.readers import frame_of_rows as _frame
from storemon_assets.db.schema import SQL_TABLES


def loaded_kind(engine: sa.Engine, sha256: str) -> str | None:
    """The feed kind of the content with this hash if the ledger holds it, else None."""
    ledger = SQL_TABLES[INGESTED_FILES.name]
    with engine.connect() as conn:
        return conn.scalar(sa.select(ledger.c.kind).where(ledger.c.file_sha256 == sha256))


def read_table(
    engine: sa.Engine, spec: Table, columns: tuple[str, ...] | None = None, keys: KeyRange | None = None
) -> pl.DataFrame:
    """A whole table (or some of its columns) as a typed polars frame; with `keys`, a shard, only
    its stores' rows, found through the stores table, so a shard reads its part of a
    store_id-keyed table by index."""
    schema = spec.subset(*columns) if columns else spec.polars_schema
    query = f"SELECT {', '.join(f't.{name}' for name in schema)} FROM {spec.name} t"
    if keys is not None:  # integers: safe as literals (connectorx takes no bound parameters)
        query += f" JOIN stores k ON k.store_id = t.store_id WHERE k.store_key BETWEEN {int(keys.first)} AND {int(keys.last)}"
    return reader_for(engine).table(engine, query, schema)


def feed_versions(engine: sa.Engine) -> dict[str, str]:
    """Per feed kind, `<files>-<newest load instant>-<load instants summed modulo 10^9>` from the
    ingested-file ledger: it changes exactly when the feed does (a new file adds a row; an
    authoritative file delivered again takes this delivery's instant, which changes the sum even
    when another process's clock made it older than the newest). The modulo keeps the sum inside
    64 bits however many files arrive. Counted by the database, not hashed row by row."""
    ledger = SQL_TABLES[INGESTED_FILES.name]
    instants = ledger.c.ingested_at_us
    query = sa.select(
        ledger.c.kind, sa.func.count(), sa.func.max(instants), sa.func.sum(instants % 1_000_000_000)
    ).group_by(ledger.c.kind)
    with engine.connect() as conn:
        return {kind: f"{files}-{newest}-{spread}" for kind, files, newest, spread in conn.execute(query).all()}


def table_counts(engine: sa.Engine, specs: Iterable[Table]) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            spec.name: conn.execute(sa.select(sa.func.count()).select_from(SQL_TABLES[spec.name])).scalar_one()
            for spec in specs
        }


def read_weekly_schedules(
    engine: sa.Engine, store_ids: pl.Series | None = None, keys: KeyRange | None = None
) -> pl.DataFrame:
    """Normalised schedules of the given stores (default: every store any feed names), derived
    from the raw hours, timezones and special-hours tables with the SPEC §2 defaults: weekly
    rows, and special-hours rows (SPEC §4a) that every business-time computation given this
    schedule honours. With `keys` (a shard holding all of `store_ids`), only that shard's rows
    of those tables are read."""
    hours = read_table(engine, BUSINESS_HOURS, ("store_id", "day_of_week", "start_time_us", "end_time_us"), keys)
    timezones = read_table(engine, STORE_TIMEZONES, ("store_id", "timezone_str"), keys)
    special = read_table(engine, SPECIAL_HOURS, SPECIAL_HOURS_READ, keys)
    if store_ids is None:
        store_ids = known_store_ids(engine)
    return weekly_schedule(hours, timezones, store_ids, special)


SPECIAL_HOURS_READ = ("store_id", "local_date", "start_time_us", "end_time_us")


def known_store_ids(engine: sa.Engine) -> pl.Series:
    """Every store named by an accepted row of any feed."""
    with engine.connect() as conn:
        query = sa.union(
            *(
                sa.select(SQL_TABLES[spec.name].c.store_id)
                for spec in (STORES, BUSINESS_HOURS, STORE_TIMEZONES, SPECIAL_HOURS)
            )
        )
        ids = [row[0] for row in conn.execute(query)]
    return pl.Series("store_id", ids, dtype=pl.String).sort()


def rejected_counts(engine: sa.Engine) -> dict[str, int]:
    """Rejected rows per feed kind (every kind present, zero when none): all of them, counted,
    not only those kept with their text."""
    table = SQL_TABLES[REJECTED_ROW_COUNTS.name]
    counts = dict.fromkeys(FEED_KINDS, 0)
    with engine.connect() as conn:
        query = sa.select(table.c.kind, sa.func.sum(table.c.row_count)).group_by(table.c.kind)
        counts.update({kind: int(n) for kind, n in conn.execute(query).all()})
    return counts


# --- polls ---------------------------------------------------------------------------------

STORE_KEYS_SCHEMA = STORES.polars_schema


def store_shards(engine: sa.Engine, shards: int) -> list[StoreShard]:
    """Up to `shards` ranges of store keys with about equal numbers of stores: cut at keys read
    in order from the stores table (its primary key), so planning costs one index scan."""
    if shards <= 1:
        return shards_from_cuts([])
    with engine.connect() as conn:
        keys = list(conn.exec_driver_sql("SELECT store_key FROM stores ORDER BY store_key").scalars())
    return shards_from_cuts(cut_points(keys, shards))


def store_keys(engine: sa.Engine, keys: KeyRange | None = None) -> pl.DataFrame:
    """store_key, store_id of every store with a poll (in the key range)."""
    where, params = reader_for(engine).key_filter("s", keys)
    return _fetch(engine, f"SELECT s.store_key, s.store_id FROM stores s WHERE 1 = 1{where}", params, STORE_KEYS_SCHEMA)


def polled_stores(engine: sa.Engine, as_of_us: int | None, keys: KeyRange | None = None) -> pl.DataFrame:
    """store_key, store_id of the stores with a poll at or before T (all stores when T is None).

    One seek per store for its first poll, so the cost does not grow with the history.
    """
    if as_of_us is None:
        return store_keys(engine, keys)
    reader = reader_for(engine)
    p = reader.placeholder
    where, params = reader.key_filter("s", keys)
    sql = (
        "SELECT s.store_key, s.store_id FROM stores s WHERE (SELECT MIN(q.polled_at_us) FROM store_status_polls q "
        f"WHERE q.store_key = s.store_key) <= {p}{where}"
    )
    return _fetch(engine, sql, (as_of_us, *params), STORE_KEYS_SCHEMA)


def polled_store_ids(engine: sa.Engine, as_of_us: int | None) -> pl.Series:
    """Stores with a poll at or before T, straight from SQL (an independent count for checks)."""
    return polled_stores(engine, as_of_us).get_column("store_id")


def report_time_us(engine: sa.Engine, as_of_us: int | None) -> int | None:
    """T: as given, else the latest poll loaded (None when there are no polls)."""
    return as_of_us if as_of_us is not None else newest_poll_us(engine)


def newest_poll_us(engine: sa.Engine) -> int | None:
    """The latest poll instant: one seek per store for its last poll."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT MAX((SELECT MAX(q.polled_at_us) FROM store_status_polls q WHERE q.store_key = s.store_key)) "
            "FROM stores s"
        ).scalar()


def read_polls(engine: sa.Engine, first_us: int, last_us: int, keys: KeyRange | None = None) -> pl.DataFrame:
    """Every poll with first_us <= instant <= last_us (of the stores in the key range)."""
    return reader_for(engine).polls(engine, first_us, last_us, keys)


def read_polls_in_ranges(engine: sa.Engine, ranges: pl.DataFrame) -> pl.DataFrame:
    """Every poll of each store with first_us <= instant <= last_us, per store.

    `ranges`: store_key, first_us, last_us (one row per store).
    """
    if ranges.is_empty():
        return pl.DataFrame(schema=POLL_READ_SCHEMA)
    return reader_for(engine).polls_in_ranges(engine, ranges.select("store_key", "first_us", "last_us"))


def last_poll_before(engine: sa.Engine, cursors: pl.DataFrame) -> pl.DataFrame:
    """For each store, the instant of its last poll strictly before its cursor.

    `cursors`: store_key, before_us. Returns store_key, last_us; stores without an earlier
    poll are left out. One seek per store, however far back the poll lies.
    """
    if cursors.is_empty():
        return pl.DataFrame(schema=LAST_POLL_SCHEMA)
    return reader_for(engine).last_poll_before(engine, cursors.select("store_key", "before_us")).drop_nulls("last_us")


# --- the current report, for the API's /stores pages: small indexed reads -------------------


def _select_frame(engine: sa.Engine, query: sa.Select, spec: Table) -> pl.DataFrame:
    """A small SQLAlchemy select as a frame typed by the table's declaration."""
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return _frame([tuple(r) for r in rows], spec.subset(*query.selected_columns.keys()))


def current_report_info(engine: sa.Engine) -> dict | None:
    """The current report's id, T and counts; None before any report was published."""
    table = SQL_TABLES[CURRENT_REPORT_INFO.name]
    with engine.connect() as conn:
        row = conn.execute(sa.select(table)).mappings().first()
    return dict(row) if row else None


def current_report_rows(engine: sa.Engine, store_id: str | None = None) -> pl.DataFrame:
    """Rows of the current report: one store's (primary-key lookup), or every store's."""
    table = SQL_TABLES[CURRENT_REPORT.name]
    query = sa.select(*table.columns)
    if store_id is not None:
        query = query.where(table.c.store_id == store_id)
    return _select_frame(engine, query, CURRENT_REPORT)


def worst_stores(engine: sa.Engine, limit: int, store_ids: Collection[str] | None = None) -> pl.DataFrame:
    """The current report's rows with the most downtime last week (ties by store id), of every
    store or only of `store_ids` (a tenant's)."""
    table = SQL_TABLES[CURRENT_REPORT.name]
    query = sa.select(*table.columns).order_by(table.c.downtime_last_week.desc(), table.c.store_id).limit(limit)
    if store_ids is not None:
        query = query.where(table.c.store_id.in_(sorted(store_ids)))
    return _select_frame(engine, query, CURRENT_REPORT)


def stores_without_observations(engine: sa.Engine, store_ids: Collection[str]) -> int:
    """Of `store_ids`, how many the current report has no observation for (a tenant's summary;
    the fleet's count is published with the report)."""
    intervals = SQL_TABLES[STORE_STATUS_INTERVALS.name]
    query = sa.select(sa.func.count(sa.distinct(intervals.c.store_id))).where(
        intervals.c.store_id.in_(sorted(store_ids)), intervals.c.status == "no_data"
    )
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def fleet_totals(engine: sa.Engine, store_ids: Collection[str] | None = None) -> dict:
    """Sums over the current report's rows (of every store, or of `store_ids`): stores, weekly
    up/down hours, stores below 95 % / 80 %."""
    table = SQL_TABLES[CURRENT_REPORT.name]
    up, down = table.c.uptime_last_week, table.c.downtime_last_week
    open_ = up + down

    def below(share: float):
        return sa.func.sum(sa.case(((open_ > 0) & (up < share * open_), 1), else_=0))

    query = sa.select(
        sa.func.count().label("stores"),
        sa.func.coalesce(sa.func.sum(up), 0).label("uptime_hours"),
        sa.func.coalesce(sa.func.sum(down), 0).label("downtime_hours"),
        sa.func.coalesce(below(0.95), 0).label("below_95"),
        sa.func.coalesce(below(0.80), 0).label("below_80"),
    )
    if store_ids is not None:
        query = query.where(table.c.store_id.in_(sorted(store_ids)))
    with engine.connect() as conn:
        return dict(conn.execute(query).mappings().one())


def store_status_intervals(engine: sa.Engine, store_id: str) -> pl.DataFrame:
    """One store's status intervals in the current report, in time order (primary-key range)."""
    table = SQL_TABLES[STORE_STATUS_INTERVALS.name]
    query = sa.select(*table.columns).where(table.c.store_id == store_id).order_by(table.c.start_half_us)
    return _select_frame(engine, query, STORE_STATUS_INTERVALS)


def store_weekly_schedule(engine: sa.Engine, store_id: str) -> pl.DataFrame:
    """One store's normalised schedule (weekly and special-hours rows), derived from its raw
    rows like the report's."""
    hours, zones = SQL_TABLES[BUSINESS_HOURS.name], SQL_TABLES[STORE_TIMEZONES.name]
    special = SQL_TABLES[SPECIAL_HOURS.name]
    own_hours = _select_frame(
        engine,
        sa.select(hours.c.store_id, hours.c.day_of_week, hours.c.start_time_us, hours.c.end_time_us).where(
            hours.c.store_id == store_id
        ),
        BUSINESS_HOURS,
    )
    zone = _select_frame(
        engine, sa.select(zones.c.store_id, zones.c.timezone_str).where(zones.c.store_id == store_id), STORE_TIMEZONES
    )
    own_special = _select_frame(
        engine,
        sa.select(*(special.c[name] for name in SPECIAL_HOURS_READ)).where(special.c.store_id == store_id),
        SPECIAL_HOURS,
    )
    return weekly_schedule(own_hours, zone, pl.Series("store_id", [store_id], dtype=pl.String), own_special)


def newest_polls(engine: sa.Engine, stores: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    """store_id, newest_poll_us: each store's newest poll at or before T (one seek per store).

    `stores`: store_key, store_id (as `polled_stores` gives them)."""
    cursors = stores.select("store_key", pl.lit(as_of_us + 1).alias("before_us"))
    last = last_poll_before(engine, cursors)
    return stores.join(last, on="store_key").select("store_id", pl.col("last_us").alias("newest_poll_us"))


def store_incidents(engine: sa.Engine, store_id: str | None = None, open_only: bool = False) -> pl.DataFrame:
    """Incidents of the current report: one store's (primary-key range) or all, open ones only if asked."""
    table = SQL_TABLES[STORE_INCIDENTS.name]
    query = sa.select(*table.columns).order_by(table.c.store_id, table.c.started_half_us)
    if store_id is not None:
        query = query.where(table.c.store_id == store_id)
    if open_only:
        query = query.where(table.c.open == sa.true())
    return _select_frame(engine, query, STORE_INCIDENTS)


def store_status_now(engine: sa.Engine, store_id: str | None = None) -> pl.DataFrame:
    """Status now of one store (primary-key lookup) or of every store."""
    table = SQL_TABLES[STORE_STATUS_NOW.name]
    query = sa.select(*table.columns).order_by(table.c.store_id)
    if store_id is not None:
        query = query.where(table.c.store_id == store_id)
    return _select_frame(engine, query, STORE_STATUS_NOW)


def retention_cutoff(engine_or_conn: sa.Engine | sa.Connection) -> int | None:
    """The retention cutoff in force (None: nothing was ever pruned)."""
    table = SQL_TABLES[RETENTION_STATE.name]
    query = sa.select(table.c.cutoff_us)
    if isinstance(engine_or_conn, sa.Connection):
        return engine_or_conn.execute(query).scalar()
    with engine_or_conn.connect() as conn:
        return conn.execute(query).scalar()


def data_version(engine: sa.Engine) -> tuple[str, ...]:
    """What the report's data is at this moment: every feed's version (feed_versions), in one
    query. Every change of the polls, hours, timezones or special hours loads a file into the
    ledger, so two equal versions mean the same data (the API's coalescing of identical triggers,
    and the 30-day shares' cache key on it)."""
    return tuple(f"{kind}:{version}" for kind, version in sorted(feed_versions(engine).items()))

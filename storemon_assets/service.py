"""From database to report: the one code path shared by the Dagster assets, the CLI and the API.

A report as of T reads the polls of the week before T, plus a margin, and each store's
*carry-in*: its last observation before the week, however old (docs/uptime-logic.md §8).
What it costs is set by the week, not by the length of the stored history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from storemon_assets.core import quality
from storemon_assets.core.business_time import US_PER_DAY, US_PER_MINUTE
from storemon_assets.core.feeds import AUTHORITATIVE_KINDS, HOURS
from storemon_assets.core.incidents import (
    incidents_from_intervals,
    no_data_warning,
    open_at,
    stale_warning,
    status_counts,
    status_frame,
    status_now,
)
from storemon_assets.core.instants import format_instant
from storemon_assets.core.parsing import FeedFile, FeedFileError
from storemon_assets.core.scalars import as_int
from storemon_assets.core.shards import StoreShard, combine_parts
from storemon_assets.core.staleness import (
    fingerprint,
    new_store_partitions,
    partition_ranges,
    schedules_check_due,
    schedules_state,
    stale_store_ids,
)
from storemon_assets.core.summaries import (
    FleetWeek,
    fleet_week,
    markdown_list,
    markdown_table,
    polls_in_window,
    share_pct,
    weekly_uptime_distribution,
)
from storemon_assets.core.tables import (
    BUSINESS_HOURS,
    INGESTED_FILES,
    REJECTED_ROW_COUNTS,
    REJECTED_ROWS,
    STORE_SCHEDULES,
    STORE_STATUS_INTERVALS,
    STORE_STATUS_NOW,
    STORE_TIMEZONES,
)
from storemon_assets.core.uptime import (
    DOWN,
    STATUSES,
    WEEK,
    UptimeReport,
    business_intervals_covering,
    empty_uptime_report,
    observations,
    polls_observations,
    report_from_observations,
    round_report,
    utc_days,
    window_utc_days,
)
from storemon_assets.db.engine import database_error
from storemon_assets.db.loading import CurrentReport, LoadOutcome, load_feed, replace_current_report
from storemon_assets.db.queries import (
    KeyRange,
    feed_versions,
    known_store_ids,
    last_poll_before,
    loaded_kind,
    newest_poll_us,
    newest_polls,
    polled_store_ids,
    polled_stores,
    read_polls,
    read_polls_in_ranges,
    read_table,
    read_weekly_schedules,
    rejected_counts,
    report_time_us,
)
from storemon_assets.names import DATA_WARNING_LABEL
from storemon_assets.progress import QUIET, Progress
from storemon_assets.publication import (  # noqa: F401 - the report's file names and writer, used through here
    COMBINED_REPORT_NAME,
    Publication,
    write_report_text,
    write_text_atomically,
)
from storemon_assets.publication import publish_report as publish_report_files

# Read with the week: the day before it, where most stores' carry-in lies (a store open every
# day was observed then). Stores without one there are looked up further back, each from its
# own last poll, over spans that double each round, so a long silence costs one seek.
CARRY_IN_MARGIN_US = US_PER_DAY
FIRST_LOOKBACK_US = 2 * US_PER_DAY


@dataclass(frozen=True)
class PollReads:
    """What a report read: the polls of its window and margin, and the older polls it needed."""

    window_polls: int = 0
    older_polls: int = 0
    lookback_rounds: int = 0
    week_polls: int = 0  # of the window's polls, those in [T - 7 d, T), whatever their status

    @property
    def polls_read(self) -> int:
        return self.window_polls + self.older_polls


@dataclass(frozen=True)
class ReportResult:
    uptime: UptimeReport
    rejected_rows_by_kind: dict[str, int] = field(default_factory=dict)
    reads: PollReads = PollReads()

    @property
    def report(self) -> pl.DataFrame:
        return self.uptime.report

    @property
    def store_count(self) -> int:
        return self.uptime.report.height

    @property
    def stores_without_observations(self) -> int:
        exact = self.uptime.exact
        return 0 if exact.is_empty() else exact.filter(~pl.col("has_observations")).height

    @property
    def fleet_week(self) -> FleetWeek:
        return fleet_week(self.uptime.exact)

    @property
    def as_of_iso(self) -> str | None:
        return format_instant(self.uptime.as_of_us)

    @property
    def intervals_by_status(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(dict(self.uptime.intervals.group_by("status").len().iter_rows()))
        return counts


@dataclass(frozen=True)
class FileIngested:
    """What ingesting one file did: loaded or found in the ledger (`outcome`), unreadable as a
    whole (`unreadable`: why, one line naming the file), refused by the database
    (`database_error`), or none of these: gone or still being written, left for later."""

    name: str
    outcome: LoadOutcome | None = None
    unreadable: str | None = None
    database_error: Exception | None = None

    @property
    def failed(self) -> bool:
        return self.unreadable is not None or self.database_error is not None

    @property
    def transient(self) -> bool:
        """A database error that a later attempt may well not meet (locked, unreachable, disk full)."""
        return isinstance(self.database_error, sa.exc.OperationalError)

    def describe(self) -> str:
        """One line for a person: what happened to the file."""
        if self.outcome is not None:
            return self.outcome.describe()
        if self.unreadable is not None:  # names the file already
            return self.unreadable
        if self.database_error is not None:
            return f"{self.name}: not loaded: {database_error(self.database_error)}"
        return f"{self.name}: skipped, gone or its last line unfinished"

    def loaded(self) -> LoadOutcome:
        """The outcome, or the failure raised (FeedFileError, the database's own error)."""
        if self.database_error is not None:
            raise self.database_error
        if self.outcome is None:
            raise FeedFileError(self.unreadable or f"{self.name}: gone before it was read")
        return self.outcome


def ingest_file(
    engine: sa.Engine,
    path: str | Path,
    read: Callable[[Path], FeedFile | None] = FeedFile,
    progress: Progress = QUIET,
    delivered: bool = True,
) -> FileIngested:
    """Read, recognise and load one file in one transaction: the one ingestion path, for the
    landing sensor's runs, `storemon ingest` and the tests. Never raises for the file's sake.

    `read` opens the file as a FeedFile (its header and hash; its rows are parsed a block at a
    time as they are loaded), or gives None while it is incomplete (the landing folder's opener
    refuses what is not a regular file inside it, raising a FeedFileError). A polls file whose
    content the ledger holds is not parsed again; hours, timezones and special hours apply
    again at every delivery (SPEC §1). `delivered=False`: the file is only looked at again (a
    run over the whole landing folder), not delivered, so no content the ledger holds is loaded.
    """
    path = Path(path)
    try:
        feed = _read_new_feed(engine, path, read, progress, delivered)
    except FeedFileError as exc:
        return FileIngested(path.name, unreadable=str(exc))
    except sa.exc.SQLAlchemyError as exc:
        return FileIngested(path.name, database_error=exc)
    if not isinstance(feed, FeedFile):
        return FileIngested(path.name, outcome=feed)
    try:
        with progress.phase(f"load {path.name}") as phase:
            outcome = load_feed(engine, feed, on_rows=phase.advance)
            phase.detail = f"{outcome.rows_loaded:,} rows, {outcome.rows_rejected:,} rejected"
    except FeedFileError as exc:  # found while reading its rows (not UTF-8, changed): nothing was loaded
        return FileIngested(path.name, unreadable=str(exc))
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        return FileIngested(path.name, database_error=exc)
    return FileIngested(path.name, outcome=outcome)


def _read_new_feed(
    engine: sa.Engine, path: Path, read: Callable[[Path], FeedFile | None], progress: Progress, delivered: bool
) -> FeedFile | LoadOutcome | None:
    """The file opened; or its outcome when the ledger holds its polls (any content, when it is not
    `delivered`); None while incomplete."""
    with progress.phase(f"read {path.name}") as phase:
        try:
            feed = read(path)
        except OSError as exc:
            raise FeedFileError.unreadable(path.name, exc) from exc
        if feed is None:
            phase.detail = "incomplete, left for later"
            return None
        kind = loaded_kind(engine, feed.sha256)
        if kind is not None and (kind not in AUTHORITATIVE_KINDS or not delivered):
            phase.detail = "in the ledger"
            return LoadOutcome(path.name, kind, already_loaded=True)
        phase.detail = f"{feed.kind}, {feed.size:,} bytes"
    return feed


def ingest_files(engine: sa.Engine, paths: Iterable[str | Path]) -> list[LoadOutcome]:
    """Ingest each file (`ingest_file`); raises on the first that fails (FeedFileError when
    unreadable, the database's error when refused)."""
    return [ingest_file(engine, path).loaded() for path in paths]


def loaded_of_kind(done: Iterable[FileIngested], kind: str) -> list[LoadOutcome]:
    """The outcomes of the files of one feed that a batch loaded (not those found loaded)."""
    return [d.outcome for d in done if d.outcome and d.outcome.kind == kind and not d.outcome.already_loaded]


def feed_load_figures(loaded: Iterable[LoadOutcome]) -> dict[str, int | float]:
    """Rows one feed's files of a run loaded and rejected, and the share rejected in %: numbers
    the UI plots across runs. A run that read no rows of the feed has no share, and gives none."""
    loaded = list(loaded)
    rejected = sum(o.rows_rejected for o in loaded)
    share = share_pct(rejected, sum(o.rows_read for o in loaded))
    figures: dict[str, int | float] = {"rows_loaded": sum(o.rows_loaded for o in loaded), "rows_rejected": rejected}
    return figures | ({"rejected_share_pct": share} if share is not None else {})


def run_feed_figures(done: Iterable[FileIngested], kind: str) -> dict[str, object]:
    """What a run did to one feed, for its asset: the files it loaded, and their figures
    (feed_load_figures)."""
    loaded = loaded_of_kind(done, kind)
    files = markdown_list((f"`{o.file_name}`" for o in loaded), "none (unchanged)")
    return {"files_loaded": files} | feed_load_figures(loaded)


def lost_weekdays_finding(done: Iterable[FileIngested]) -> quality.Finding | None:
    """The `no_store_lost_weekdays` verdict on the hours files a run loaded (None: it loaded none).
    `details`: how many stores lost a weekday they had, and per file the stores it took weekdays
    from (the first 100 named)."""
    hours = loaded_of_kind(done, HOURS)
    if not hours:
        return None
    losing = {o.file_name: o.stores_losing_weekdays for o in hours if o.stores_losing_weekdays}
    stores = len({s for names in losing.values() for s in names})
    summary = "no store lost a weekday"
    if stores:
        summary = f"{stores:,} stores lost weekdays they had: is one store's hours split across files?"
    files = markdown_list(
        f"`{name}`: {len(ids):,} stores: " + ", ".join(f"`{s}`" for s in ids[:100]) + (" ..." if len(ids) > 100 else "")
        for name, ids in losing.items()
    )
    return quality.Finding(not stores, summary, {"stores": stores, "files": files})


def raw_feed_findings(engine: sa.Engine) -> dict[tuple[str, str], quality.Finding]:
    """Every raw feed check's verdict (quality.RAW_FEED_CHECKS), from one read of each table."""
    store_ids = ("store_id",)
    return quality.raw_feed_findings(
        read_table(engine, INGESTED_FILES),
        read_table(engine, REJECTED_ROWS),
        read_table(engine, REJECTED_ROW_COUNTS),
        polled_store_ids(engine, None),
        read_table(engine, STORE_TIMEZONES, store_ids).get_column("store_id"),
        read_table(engine, BUSINESS_HOURS, store_ids).get_column("store_id"),
    )


def build_report(
    engine: sa.Engine,
    as_of_us: int | None = None,
    keys: KeyRange | None = None,
    progress: Progress = QUIET,
    store_daily: bool = False,
) -> ReportResult:
    """Compute the report as of T (default: the latest poll) from what the database holds,
    reading only the polls it needs (of the stores in `keys`, a shard, when given).

    The computation identifies stores by their integer keys (see core/uptime.py); the result
    carries their text ids again. `store_daily` (the Dagster report run): also store the daily
    values of the dates an hourly refresh asks for, cut from the report's own status intervals
    (history.store_current_daily), so the refresh finds them holding and reads no poll again.
    """
    from storemon_assets.core.instants import now_us

    started_us = now_us()  # before any read: a file loaded meanwhile counts as later (history.py)
    with progress.phase("stores") as phase:
        as_of_us = report_time_us(engine, as_of_us)
        if as_of_us is None:
            phase.detail = "no polls loaded"
            return ReportResult(empty_uptime_report(None), rejected_counts(engine))
        stores = polled_stores(engine, as_of_us, keys)
        schedule = keyed_by_store_key(read_weekly_schedules(engine, stores.get_column("store_id"), keys), stores)
        phase.detail = f"{stores.height:,} polled by {format_instant(as_of_us)}"
    obs, business, reads = report_observations(engine, stores, schedule, as_of_us, keys, progress)
    with progress.phase("compute") as phase:
        uptime = report_from_observations(obs, schedule, stores.get_column("store_key"), as_of_us, business)
        if store_daily:
            from storemon_assets.history import store_current_daily

            store_current_daily(engine, obs, uptime.intervals, schedule, as_of_us, started_us)
        uptime = with_text_store_ids(uptime, stores)
        phase.detail = f"{obs.height:,} observations, {uptime.intervals.height:,} status intervals"
    return ReportResult(uptime, rejected_counts(engine), reads)


def keyed_by_store_key(frame: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """A frame of text store ids, with the stores' integer keys in the store_id column instead."""
    return frame.join(stores, on="store_id").with_columns(pl.col("store_key").alias("store_id")).drop("store_key")


def with_text_store_ids(uptime: UptimeReport, stores: pl.DataFrame) -> UptimeReport:
    """The report of a keyed computation with the stores' text ids back, sorted by them."""
    ids = stores.select(pl.col("store_key").alias("store_id"), pl.col("store_id").alias("text_id"))

    def back(frame: pl.DataFrame, order: list[str]) -> pl.DataFrame:
        if frame.is_empty():  # no store to report: the frames already have their text-typed shape
            return frame
        return (
            frame.join(ids, on="store_id", how="left")
            .with_columns(pl.col("text_id").alias("store_id"))
            .drop("text_id")
            .sort(order)
        )

    return UptimeReport(
        uptime.as_of_us,
        back(uptime.report, ["store_id"]),
        back(uptime.exact, ["store_id"]),
        back(uptime.intervals, ["store_id", "start_half_us"]),
    )


def report_observations(
    engine: sa.Engine,
    stores: pl.DataFrame,
    schedule: pl.DataFrame,
    as_of_us: int,
    keys: KeyRange | None = None,
    progress: Progress = QUIET,
) -> tuple[pl.DataFrame, pl.DataFrame, PollReads]:
    """The observations a report as of T needs (see `report_from_observations`): all of the
    week before T, and each store's carry-in, however old.

    `stores`: store_key, store_id of the stores to report; `schedule` and the observations
    returned are keyed by store_key (in the store_id column). Polls of [T - 7 d - margin, T] are
    read for all of them; a store with no observation before the week among those is looked
    up further back on its own: from its last poll before what was read, a span of polls is
    read, and if none of them is an observation, the span before it, twice as long. A poll
    outside business hours is not an observation, which is why the last poll alone does not do.
    Also returns the business intervals of the week and the polls read, for the computation.
    """
    week_start_us = as_of_us - WEEK.length_us
    with progress.phase("read polls") as phase:
        window = keyed_polls(read_polls(engine, week_start_us - CARRY_IN_MARGIN_US, as_of_us, keys))
        phase.detail = f"{window.height:,} of the week before T and the day before it"
    with progress.phase("observations") as phase:
        # One set of business intervals serves the polls read and the week itself.
        days = pl.concat(
            [utc_days(window, "polled_at_us"), window_utc_days(stores.get_column("store_key"), week_start_us, as_of_us)]
        ).unique()
        business = business_intervals_covering(schedule, days)
        obs = observations(window, business)
        phase.detail = f"{obs.height:,} inside business hours"
    found = obs.filter(pl.col("at_us") < week_start_us).get_column("store_id").unique()
    pending = stores.filter(~pl.col("store_key").is_in(found.implode())).select(
        "store_key", pl.lit(week_start_us - CARRY_IN_MARGIN_US).alias("before_us")
    )
    with progress.phase("carry-ins") as phase:
        carry_ins, older_polls, rounds = _older_carry_ins(engine, pending, schedule)
        phase.detail = (
            f"{pending.height:,} stores without one in the margin; {sum(c.height for c in carry_ins):,} found "
            f"further back, reading {older_polls:,} polls in {rounds} rounds"
        )
    obs = pl.concat([obs, *carry_ins]).sort("store_id", "at_us") if carry_ins else obs
    week_polls = polls_in_window(window, as_of_us, WEEK.length_us)
    return obs, business, PollReads(window.height, older_polls, rounds, week_polls)


def _older_carry_ins(
    engine: sa.Engine, pending: pl.DataFrame, schedule: pl.DataFrame
) -> tuple[list[pl.DataFrame], int, int]:
    """Carry-ins of the stores in `pending` (store_key, before_us: nothing older was read)."""
    carry_ins = []
    older_polls = rounds = 0
    lookback_us = FIRST_LOOKBACK_US
    while not pending.is_empty():
        last = last_poll_before(engine, pending)  # stores with nothing earlier drop out here
        if last.is_empty():
            break
        spans = last.select("store_key", (pl.col("last_us") - lookback_us).alias("first_us"), "last_us")
        older = keyed_polls(read_polls_in_ranges(engine, spans))
        older_obs = polls_observations(older, schedule)
        # The latest observation of a span is the store's carry-in: nothing after it was unread.
        carry_ins.append(older_obs.filter(pl.col("at_us") == pl.col("at_us").max().over("store_id")))
        done = older_obs.get_column("store_id").unique()
        pending = spans.filter(~pl.col("store_key").is_in(done.implode())).select(
            "store_key", pl.col("first_us").alias("before_us")
        )
        older_polls += older.height
        rounds += 1
        lookback_us *= 2
    return carry_ins, older_polls, rounds


def keyed_polls(polls: pl.DataFrame) -> pl.DataFrame:
    """Polls as read (store_key, ...) in the shape the computation takes, keyed by store key."""
    return polls.rename({"store_key": "store_id"})


def current_report(result: ReportResult, report_id: str, incidents: Incidents | None = None) -> CurrentReport | None:
    """What the database keeps of a report when it is the current one (None: no polls, no T): its
    rows, status intervals and, when given, its incidents and status now (SPEC §9)."""
    if result.uptime.as_of_us is None:
        return None
    return CurrentReport(
        report_id,
        result.uptime.as_of_us,
        result.report,
        result.uptime.intervals,
        result.stores_without_observations,
        incidents.incidents if incidents else None,
        incidents.status if incidents else None,
    )


def report_incidents(
    engine: sa.Engine, result: ReportResult, stale_after_minutes: int | None = None
) -> Incidents | None:
    """The incidents and status now of a report about to be published (None: no polls, no T).

    `stale_after_minutes`: when an open store's newest poll is too old (default: the setting).
    """
    if result.uptime.as_of_us is None:
        return None
    if stale_after_minutes is None:
        from storemon_assets import settings

        stale_after_minutes = settings.stale_after_minutes()
    return incidents_of(engine, result.uptime.as_of_us, result.uptime.intervals, stale_after_minutes)


def publish_current_report(
    engine: sa.Engine, result: ReportResult, report_id: str, stale_after_minutes: int | None = None
) -> bool:
    """Make this the current report in the database only (its rows and status intervals, which the
    API's pages read, its incidents and status now), unless a newer one is published; False then.
    Without polls, nothing."""
    current = current_report(result, report_id, report_incidents(engine, result, stale_after_minutes))
    return current is not None and replace_current_report(engine, current)


def publish_report(
    engine: sa.Engine, reports_dir: Path, result: ReportResult, report_id: str, incidents: Incidents | None = None
) -> Publication:
    """Write `<report_id>.csv` and make the report current, `combined_report.csv` and the database
    (with `incidents`, from `report_incidents`) together, unless a newer one is published
    (storemon_assets/publication.py has the order)."""
    current = current_report(result, report_id, incidents)
    return publish_report_files(engine, reports_dir, current, result.report, report_id)


def report_figures(
    result: ReportResult, compute_seconds: float, stale: str | None = None
) -> dict[str, str | int | float]:
    """A report's figures, as Dagster's pages plot them across runs: the fleet's weekly uptime %
    weighted by business time, the stores whose weekly uptime is under 95 % and under 80 %, what
    the report read (the week before T and a margin, then older polls only for carry-ins), and the
    stale-data warning when there is one."""
    fleet = result.fleet_week
    return {
        "as_of": result.as_of_iso or "(no polls loaded)",
        "stores": result.store_count,
        **({"fleet_uptime_pct_week": fleet.uptime_pct} if fleet.uptime_pct is not None else {}),
        **{f"stores_under_{pct}_pct_week": n for pct, n in fleet.stores_under_pct.items()},
        "stores_without_observations": result.stores_without_observations,
        "polls_read": result.reads.polls_read,
        "polls_in_week": result.reads.week_polls,
        "rejected_rows": sum(result.rejected_rows_by_kind.values()),
        **{f"rejected_{kind}_rows": n for kind, n in result.rejected_rows_by_kind.items()},
        "compute_seconds": round(compute_seconds, 3),
        **({DATA_WARNING_LABEL: stale} if stale else {}),
    }


def published_figures(
    result: ReportResult, publication: Publication, compute_seconds: float, stale: str | None
) -> dict[str, object]:
    """The current report's figures (report_figures), its first rows and weekly-uptime
    distribution, and where it was written."""
    return report_figures(result, compute_seconds, stale) | {
        "preview": result.report,
        "weekly_uptime_distribution": weekly_uptime_distribution(result.report),
        "combined_report": publication.combined,
        "run_report": publication.run_copy,
    }


def interval_figures(result: ReportResult) -> dict[str, object]:
    """The status intervals behind a report: stores, intervals per status, the first rows."""
    return {
        "as_of": result.as_of_iso or "(no polls loaded)",
        "stores": result.uptime.intervals.get_column("store_id").n_unique(),
        **{f"{status}_intervals": n for status, n in result.intervals_by_status.items()},
        "preview": result.uptime.intervals.head(10),
        "table": STORE_STATUS_INTERVALS.name,
    }


def stale_data_warning(engine: sa.Engine, result: ReportResult) -> str | None:
    """A warning when the report's T is far after the newest poll (e.g. STOREMON_AS_OF=now on old
    data: every status at T is a guess, docs/monitor.md), or before every poll (an empty report);
    None otherwise."""
    return _stale_data_warning(result, newest_poll_us(engine))


def _stale_data_warning(result: ReportResult, newest_us: int | None) -> str | None:
    from storemon_assets import settings

    as_of_us = result.uptime.as_of_us
    stale_after_us = settings.stale_after_minutes() * US_PER_MINUTE
    return stale_warning(as_of_us, newest_us, stale_after_us) or no_data_warning(
        as_of_us, newest_us, result.store_count
    )


def check_report(engine: sa.Engine, result: ReportResult) -> tuple[dict[str, quality.Finding], str | None]:
    """What the report's checks (core/quality.REPORT_CHECKS) find, and its stale-data warning
    (stale_data_warning), from one look-up of the newest poll (a seek per store): the one place
    they are computed, for the current report (Dagster) and as-of reports."""
    polled = polled_store_ids(engine, result.uptime.as_of_us)
    newest_us = newest_poll_us(engine)
    findings = quality.report_findings(result.report, result.uptime, polled, newest_us)
    return findings, _stale_data_warning(result, newest_us)


def checked_report(
    engine: sa.Engine, as_of_us: int | None
) -> tuple[ReportResult, tuple[dict[str, quality.Finding], str | None], float]:
    """The report as of T (None: the latest poll), what its checks found and its stale-data
    warning (check_report), and the seconds the computation took."""
    started = time.perf_counter()
    result = build_report(engine, as_of_us)
    compute_seconds = time.perf_counter() - started
    return result, check_report(engine, result), compute_seconds


def build_report_shard(
    engine: sa.Engine, as_of_us: int | None, shard: StoreShard, store_daily: bool = False
) -> ReportResult:
    """The report of one shard's stores as of T, reading only their polls (and with
    `store_daily`, storing their current daily values: `build_report`).

    T must be fixed by the caller (`newest_poll_us` once for the whole report), so that every
    shard computes as of the same instant; None (no polls then) gives the empty report.
    """
    if as_of_us is None:
        return ReportResult(empty_uptime_report(None))
    return build_report(engine, as_of_us, KeyRange(shard.first, shard.last), store_daily=store_daily)


def combine_report_shards(
    engine: sa.Engine,
    as_of_us: int | None,
    exact_parts: list[pl.DataFrame],
    interval_parts: list[pl.DataFrame],
    reads_parts: Iterable[PollReads] = (),
) -> ReportResult:
    """The report from its shards' exact sums, status intervals and reads: identical to
    `build_report` as of the same T."""
    empty = empty_uptime_report(as_of_us)
    exact = combine_parts(exact_parts, empty.exact)
    intervals = combine_parts(interval_parts, empty.intervals)
    report = round_report(exact) if exact.height else empty.report
    reads = list(reads_parts)
    total = PollReads(
        window_polls=sum(r.window_polls for r in reads),
        older_polls=sum(r.older_polls for r in reads),
        lookback_rounds=max((r.lookback_rounds for r in reads), default=0),  # shards look back side by side
        week_polls=sum(r.week_polls for r in reads),
    )
    return ReportResult(UptimeReport(as_of_us, report, exact, intervals), rejected_counts(engine), total)


@dataclass(frozen=True)
class Incidents:
    """A report's incidents and each of its stores' status at its T (SPEC §9)."""

    as_of_us: int | None
    incidents: pl.DataFrame  # core.incidents.INCIDENT_SCHEMA
    status: pl.DataFrame  # core.incidents.STATUS_NOW_SCHEMA


def incidents_of(
    engine: sa.Engine, as_of_us: int | None, intervals: pl.DataFrame, stale_after_minutes: int
) -> Incidents:
    """Incidents and status now from a report's status intervals: the one path from a report to
    its incidents, for the current report (`report_incidents`) and for any T (`storemon incidents`).

    What the intervals do not hold is read here: whether each store is inside its business time at
    T (from its schedule, like the report's business time) and its newest poll (one seek per store).
    """
    incidents = incidents_from_intervals(intervals)
    if as_of_us is None:
        return Incidents(None, incidents, status_now(intervals, incidents, _no_stores(), _no_polls(), 0, 0))
    stores = polled_stores(engine, as_of_us)
    schedule = read_weekly_schedules(engine, stores.get_column("store_id"))
    open_now = open_at(schedule, stores.get_column("store_id"), as_of_us)
    newest = newest_polls(engine, stores, as_of_us)
    status = status_now(intervals, incidents, open_now, newest, as_of_us, stale_after_minutes * US_PER_MINUTE)
    return Incidents(as_of_us, incidents, status)


def incidents_figures(current: Incidents | None) -> dict[str, object]:
    """Counts per status now (plotted across the report's runs), and who is down and who is not
    reporting, as the API's /status shows them, longest first."""
    if current is None or current.as_of_us is None:
        return {"as_of": "(no polls loaded)"}
    listed = current.status.filter((pl.col("status") == DOWN) | pl.col("not_reporting"))
    shown = status_frame(listed, current.as_of_us)
    down = shown.filter(pl.col("status") == DOWN).sort("since_utc")
    not_reporting = shown.filter(pl.col("not_reporting")).sort("newest_poll_utc")
    return {
        "as_of": format_instant(current.as_of_us),
        "incidents": current.incidents.height,
        "open_incidents": as_int(current.incidents.get_column("open").sum()),
        **{  # the names the UI has plotted since the first release of the metadata
            ("stores_not_reporting" if name == "not_reporting" else f"stores_{name}_now"): n
            for name, n in status_counts(current.status).items()
        },
        "down_now": markdown_table(down.select("store_id", "since_utc", "since_local"), max_rows=20),
        "not_reporting_now": markdown_table(not_reporting.select("store_id", "status", "newest_poll_utc"), max_rows=20),
        "status_table": STORE_STATUS_NOW.name,
    }


def _no_stores() -> pl.DataFrame:
    return pl.DataFrame(schema={"store_id": pl.String, "timezone": pl.String, "open_now": pl.Boolean})


def _no_polls() -> pl.DataFrame:
    return pl.DataFrame(schema={"store_id": pl.String, "newest_poll_us": pl.Int64})


def incidents_as_of(engine: sa.Engine, as_of_us: int | None, stale_after_minutes: int) -> Incidents:
    """Incidents of the report as of T (default: the latest poll), computed afresh."""
    result = build_report(engine, as_of_us)
    return incidents_of(engine, result.uptime.as_of_us, result.uptime.intervals, stale_after_minutes)


def stale_partitions(engine: sa.Engine, partition_keys: list[str]) -> tuple[pl.Series, pl.DataFrame]:
    """Stale store ids among the store partitions, and the schedule the raw feeds give them now."""
    derived = read_weekly_schedules(engine, pl.Series("store_id", partition_keys, dtype=pl.String))
    return stale_store_ids(derived, read_table(engine, STORE_SCHEDULES)), derived


@dataclass(frozen=True)
class ScheduleRefresh:
    """The store partitions to add (`new_stores`, in this order; `left_out`: how many more the
    limit refused) and to materialise again (`runs`: run key -> first and last partition of a
    contiguous range; the same stale content gives the same keys), and the cursor to keep."""

    cursor: dict
    new_stores: list[str] = field(default_factory=list)
    left_out: int = 0
    stale_stores: int = 0
    runs: dict[str, tuple[str, str]] = field(default_factory=dict)


def schedule_refresh(
    engine: sa.Engine, partition_keys: list[str], cursor: dict, max_runs: int, max_partitions: int
) -> ScheduleRefresh | None:
    """The partitions of stores the feeds name that have none yet (whoever loaded them: a run,
    `storemon ingest`), then which store partitions are stale (new stores, changed hours, special
    hours or timezone), in at most `max_runs` ranges; None when neither the feeds nor the
    partitions changed since the last look (core/staleness.py)."""
    versions = feed_versions(engine)
    if not schedules_check_due(cursor, schedules_state(versions, len(partition_keys))):
        return None
    new, left_out = new_store_partitions(known_store_ids(engine).to_list(), partition_keys, max_partitions)
    keys = [*partition_keys, *new]  # a dynamic partition set keeps the order its keys were added in
    state = schedules_state(versions, len(keys))
    stale, derived = stale_partitions(engine, keys)
    if stale.is_empty():
        return ScheduleRefresh({"state": state, "pending": False}, new, left_out)
    version = fingerprint(derived, stale)
    ranges = partition_ranges(keys, set(stale.to_list()), max_runs)
    runs = {f"schedules-{version}-{first}-{last}": (first, last) for first, last in ranges}
    return ScheduleRefresh({"state": state, "pending": True}, new, left_out, stale.len(), runs)

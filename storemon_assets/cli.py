"""The `storemon` command: report, ingest, incidents, alerts, generate, sample, db, token, api, dev, worker."""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from storemon_assets import settings
from storemon_assets.core.feeds import HOURS, POLLS, SPECIAL, TIMEZONES
from storemon_assets.progress import QUIET, Progress

if TYPE_CHECKING:
    import sqlalchemy as sa

# Modules that import numpy (core.instants, core.parsing, and everything past them) are imported
# inside the commands: main() limits OpenBLAS's threads first (settings.limit_blas_threads).

_KIND_NAMES = {POLLS: "status-polls", HOURS: "business-hours", TIMEZONES: "timezones", SPECIAL: "special-hours"}


def _fail(message: str) -> int:
    print(f"storemon: error: {message}", file=sys.stderr)
    return 2


def cmd_report(args: argparse.Namespace) -> int:
    """The report as CSV: from three files, and optionally a fourth of special hours (in a fresh
    embedded database, through the same ingestion and computation as the assets) or, without
    them, from the configured database."""
    from storemon_assets.core.instants import parse_as_of
    from storemon_assets.core.parsing import FeedFileError
    from storemon_assets.publication import sweep_temporaries, write_report_text

    files = (args.status, args.hours, args.timezones)
    if any(files) and not all(files):
        return _fail("give all three of --status, --hours and --timezones, or none to report from the database")
    if args.special and not all(files):
        return _fail("--special goes with --status, --hours and --timezones (the configured database has its own)")
    progress = Progress.to_stderr(args.quiet)
    try:
        as_of_us = parse_as_of(args.as_of)
        if all(files):
            result, rejected, stale = _report_from_files(args, as_of_us, progress)
        else:
            result, rejected, stale = _report_from_database(as_of_us, progress)
    except (FeedFileError, ValueError) as exc:
        return _fail(str(exc))
    out = Path(args.out)
    try:
        with progress.phase("write") as phase:
            sweep_temporaries(out.parent, out.name)  # what a killed `storemon report` left beside it
            write_report_text(result.report, out)  # its temporary file goes whatever ends the write
            phase.detail = f"{result.store_count:,} rows to {args.out}"
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    print(
        f"wrote {args.out}: {result.store_count} stores as of {result.as_of_iso or '(no polls)'}, "
        f"{result.stores_without_observations} without observations, {rejected} rejected rows",
        file=sys.stderr,
    )
    if stale:
        print(f"WARNING: {stale}", file=sys.stderr)
    return 0


def _report_from_files(args: argparse.Namespace, as_of_us: int | None, progress: Progress):
    """Ingest the named files into a scratch database, each by the one ingestion path
    (service.ingest_file: parsed a block at a time as it is loaded), and report from it."""
    from storemon_assets.core.parsing import FeedFile, FeedFileError
    from storemon_assets.db.engine import open_database
    from storemon_assets.service import ingest_file
    from storemon_assets.settings import sqlite_url

    def of_kind(expected: str):
        def read(path: Path) -> FeedFile:
            feed = FeedFile(path)
            if feed.kind != expected:
                raise FeedFileError(
                    f"{path.name}: expected a {_KIND_NAMES[expected]} file but its header is that of a "
                    f"{_KIND_NAMES[feed.kind]} file"
                )
            return feed

        return read

    named = [(POLLS, args.status), (HOURS, args.hours), (TIMEZONES, args.timezones), (SPECIAL, args.special)]
    with tempfile.TemporaryDirectory(prefix="storemon-") as scratch:
        engine = open_database(sqlite_url(Path(scratch) / "storemon.db"))
        try:
            outcomes = [
                ingest_file(engine, path, read=of_kind(kind), progress=progress).loaded()
                for kind, path in named
                if path
            ]
            result, stale = _report_and_warning(engine, as_of_us, progress)
        finally:
            engine.dispose()
    for outcome in outcomes:  # why, while the scratch database that knew it is gone
        if outcome.rows_rejected:
            print(f"{outcome.file_name}: {outcome.rejections()}", file=sys.stderr)
    return result, sum(o.rows_rejected for o in outcomes), stale


def _report_from_database(as_of_us: int | None, progress: Progress):
    with _configured_database(progress) as engine:
        result, stale = _report_and_warning(engine, as_of_us, progress)
    return result, sum(result.rejected_rows_by_kind.values()), stale


def _report_and_warning(engine: sa.Engine, as_of_us: int | None, progress: Progress):
    """The report as of T and its stale-data or no-data warning: only for a T given (without one,
    T is the newest poll, so there is nothing to warn of)."""
    from storemon_assets.service import build_report, stale_data_warning

    result = build_report(engine, as_of_us, progress=progress)
    return result, (stale_data_warning(engine, result) if as_of_us is not None else None)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Load files of any of the four kinds into the configured database, one transaction each
    (service.ingest_file). Prints one line per file: a file that cannot be read, or whose load
    the database refuses (locked past its busy timeout, disk full), says why and the next file
    is tried; the exit status is then 2."""
    import sqlalchemy as sa

    from storemon_assets.db.engine import database_error
    from storemon_assets.service import ingest_file

    progress = Progress.to_stderr(args.quiet)
    failed = 0
    with ExitStack() as closing:
        try:
            engine = closing.enter_context(_configured_database(progress))
        except sa.exc.SQLAlchemyError as exc:  # only the opening: a file's own failure is its line below
            return _fail(f"cannot open the database: {database_error(exc)}")
        for name in args.files:
            done = ingest_file(engine, name, progress=progress)
            failed += done.failed
            print(done.describe(), flush=True)
    return 2 if failed else 0


@contextmanager
def _configured_database(progress: Progress = QUIET) -> Iterator[sa.Engine]:
    """The configured database (STOREMON_DATABASE_URL), its connections closed however the
    command ends: SQLite merges its write-ahead log into the file at the last close, and main()
    spares the exit its garbage collection, which would otherwise have closed them."""
    from storemon_assets.db.engine import open_database

    with progress.phase("open database") as phase:
        engine = open_database(settings.database_url())
        phase.detail = engine.url.render_as_string(hide_password=True)
    try:
        yield engine
    finally:
        engine.dispose()


def cmd_daily(args: argparse.Namespace) -> int:
    """Daily values (SPEC §8) of the dates whose day meets [T - N days, T), as CSV: stored
    values where they hold for T, the rest computed from the polls (storemon_assets/history.py)."""
    from storemon_assets.core.instants import format_instant, parse_as_of
    from storemon_assets.history import daily_history, write_daily_csv

    if args.days < 1:
        return _fail(f"--days {args.days} must be at least 1")
    progress = Progress.to_stderr(args.quiet)
    try:
        as_of_us = parse_as_of(args.as_of)
        with _configured_database(progress) as engine:
            history = daily_history(engine, as_of_us, days=args.days, progress=progress)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        write_daily_csv(history, Path(args.out))
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    print(
        f"wrote {args.out}: {history.values.height:,} store-days as of {format_instant(history.as_of_us) or '(no polls)'} "
        f"({history.stored_rows:,} stored, {history.computed_rows:,} computed)",
        file=sys.stderr,
    )
    return 0


def cmd_sla(args: argparse.Namespace) -> int:
    """Monthly SLA per store from the daily values of its local month (docs/history.md)."""
    from storemon_assets.core.daily import month_dates, monthly_sla
    from storemon_assets.core.instants import parse_as_of
    from storemon_assets.history import daily_history, write_csv_atomically

    progress = Progress.to_stderr(args.quiet)
    try:
        first, last = month_dates(args.month)
        as_of_us = parse_as_of(args.as_of)
        with _configured_database(progress) as engine:
            history = daily_history(engine, as_of_us, first_date=first, last_date=last, progress=progress)
    except ValueError as exc:
        return _fail(str(exc))
    sla = monthly_sla(history.values, first.strftime("%Y-%m"))
    try:
        write_csv_atomically(sla, Path(args.out))
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    print(f"wrote {args.out}: {sla.height} stores, {first:%Y-%m}", file=sys.stderr)
    return 0


def generated_end(text: str | None) -> dt.datetime:
    """The generator's end instant (naive UTC) from `--end`, or its default."""
    from storemon_assets.core.generate import DEFAULT_END
    from storemon_assets.core.instants import parse_as_of

    if not text or not text.strip():
        return DEFAULT_END
    try:
        end_us = parse_as_of(text)
    except ValueError:
        raise ValueError(f"--end {text!r} is not a timestamp (expected e.g. 2024-03-12T18:00:00Z)") from None
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=end_us)


def cmd_incidents(args: argparse.Namespace) -> int:
    """The incidents of the report as of T (SPEC §9) from the configured database, as CSV."""
    from storemon_assets.core.incidents import incidents_csv
    from storemon_assets.core.instants import format_instant, parse_as_of
    from storemon_assets.service import incidents_as_of, write_text_atomically

    try:
        as_of_us = parse_as_of(args.as_of)
        with _configured_database() as engine:
            found = incidents_as_of(engine, as_of_us, settings.stale_after_minutes())
    except ValueError as exc:
        return _fail(str(exc))
    try:
        write_text_atomically(incidents_csv(found.incidents), Path(args.out))
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    still_open = int(found.incidents.get_column("open").sum())
    print(
        f"wrote {args.out}: {found.incidents.height} incidents ({still_open} open) as of "
        f"{format_instant(found.as_of_us) or '(no polls)'}",
        file=sys.stderr,
    )
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    """Compute the incidents as of T (default: STOREMON_AS_OF, else the latest poll, as the current
    report) and send the alerts due once: for cron users without Dagster's sensor."""
    from storemon_assets.alerting import AlertSettings, evaluate_alerts
    from storemon_assets.core.instants import parse_as_of
    from storemon_assets.service import incidents_as_of

    try:
        alert_settings = AlertSettings.from_environment()
        as_of_us = parse_as_of(args.as_of if args.as_of is not None else settings.as_of_setting())
        if not alert_settings.urls:
            raise ValueError(f"{settings.ALERT_URLS.name} is not set: give one or more Apprise URLs (docs/monitor.md)")
        stale_after_minutes = settings.stale_after_minutes()
    except ValueError as exc:
        return _fail(str(exc))
    with _configured_database() as engine:
        try:
            current = incidents_as_of(engine, as_of_us, stale_after_minutes)
        except ValueError as exc:
            return _fail(str(exc))
        outcome = evaluate_alerts(engine, alert_settings, current=current)
    print(f"alerts: {outcome.describe()}", file=sys.stderr)
    return 1 if outcome.failed_messages else 0


def cmd_generate(args: argparse.Namespace) -> int:
    from storemon_assets.core.generate import generate_feeds

    try:
        end = generated_end(args.end)
        feeds = generate_feeds(
            args.stores, args.days, args.seed, end=end, hours_file=args.hours, timezones_file=args.timezones
        )
        paths = feeds.write(args.out)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    print(
        f"wrote {feeds.polls.height} polls, {feeds.hours.height} hours rows, {feeds.timezones.height} timezone rows "
        f"to {Path(args.out)}: " + ", ".join(p.name for p in paths.values()),
        file=sys.stderr,
    )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Copy the bundled sample data set into the landing folder."""

    target = Path(args.to) if args.to else settings.landing_dir()
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for source in sorted(settings.SAMPLE_DATA_DIR.glob("*.csv")):
        destination = target / source.name
        if not destination.exists():
            shutil.copyfile(source, destination)
            copied.append(source.name)
    print(f"sample data in {target}: " + (", ".join(copied) if copied else "already there"), file=sys.stderr)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Bring the configured database to the current schema (also done by every start)."""
    import sqlalchemy as sa

    from storemon_assets.db.engine import create_db_engine
    from storemon_assets.db.migrate import upgrade_schema

    engine = create_db_engine(settings.database_url())
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            empty = not sa.inspect(conn).get_table_names()
        before, after = upgrade_schema(engine)
    except sa.exc.SQLAlchemyError as exc:
        return _fail(f"cannot upgrade {shown}: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    if before == after:
        print(f"{shown}: already at revision {after}", file=sys.stderr)
    elif before is None:
        origin = "created" if empty else "upgraded from the release schema (0.1.0)"
        print(f"{shown}: {origin} to revision {after}", file=sys.stderr)
    else:
        print(f"{shown}: upgraded from revision {before} to revision {after}", file=sys.stderr)
    return 0


def cmd_db_prune(args: argparse.Namespace) -> int:
    """Retention (SPEC §11): prune polls older than STOREMON_RETENTION_DAYS and the run reports
    older than STOREMON_REPORT_KEEP_DAYS, as the daily Dagster schedule does."""
    from storemon_assets.history import retention

    progress = Progress.to_stderr(args.quiet)
    try:
        days = settings.retention_days() if args.retention_days is None else args.retention_days
        keep_days = settings.report_keep_days()  # a setting refused before the database is opened
        with _configured_database(progress) as engine:
            done = retention(engine, settings.reports_dir(), days, keep_days, progress)
    except ValueError as exc:
        return _fail(str(exc))
    print("\n".join(done), file=sys.stderr)
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    """Create an API token and print it (once: only its hash is stored)."""
    from storemon_assets.core.access import parse_store_list
    from storemon_assets.db.tokens import create_token

    try:
        stores = parse_store_list(args.stores)
        with _configured_database() as engine:
            token = create_token(engine, args.name, args.scope, stores)
    except ValueError as exc:
        return _fail(str(exc))
    seen = f"{len(stores)} store(s)" if stores is not None else "every store"
    print(f"token {args.name.strip()!r} ({args.scope}, {seen}); it is shown only now:", file=sys.stderr)
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from storemon_assets.core.instants import format_instant
    from storemon_assets.db.tokens import list_tokens

    with _configured_database() as engine:
        tokens = list_tokens(engine)
    if not tokens:
        print("no API tokens: the API is open on loopback only (storemon token create ...)", file=sys.stderr)
        return 0
    print("name\tscope\tstores\tcreated_utc\tlast_used_utc\trevoked_utc")
    for t in tokens:
        stores = "all" if t.stores is None else ",".join(sorted(t.stores))
        times = (format_instant(t.created_at_us), format_instant(t.last_used_at_us), format_instant(t.revoked_at_us))
        print("\t".join([t.name, t.scope, stores, *(value or "" for value in times)]))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from storemon_assets.db.tokens import revoke_token

    with _configured_database() as engine:
        revoked = revoke_token(engine, args.name)
    if not revoked:
        return _fail(f"no valid token named {args.name!r} (storemon token list shows them)")
    print(f"token {args.name!r} revoked; a running API refuses it within a few seconds", file=sys.stderr)
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the trigger/poll HTTP API in front of the Dagster webserver; on an address other than
    loopback only once a token exists (SPEC §10)."""
    import uvicorn

    from storemon_assets.api import create_app
    from storemon_assets.core.access import is_loopback, refusal_to_start
    from storemon_assets.db.engine import DatabaseUnavailable, open_existing_database
    from storemon_assets.db.tokens import any_token

    tokens_exist = False
    if not is_loopback(args.host):  # the API never creates the database: a missing one has no token
        try:
            tokens_exist = any_token(open_existing_database(settings.database_url()))
        except DatabaseUnavailable:
            pass
    reason = refusal_to_start(args.host, tokens_exist)
    if reason:
        return _fail(reason)
    uvicorn.run(create_app(listen_host=args.host), host=args.host, port=args.port, log_level="info")
    # uvicorn has shut down in order (requests finished, lifespan ended): what is left is the
    # interpreter tearing down every module it imported, work that stops nothing. Skipping it
    # keeps `storemon dev`'s stop within its grace period.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cmd_dev(args: argparse.Namespace) -> int:
    """Dagster (`dagster dev`) and the API in one foreground command; one Ctrl-C stops both."""
    from storemon_assets.dev import serve

    return serve(args.host, args.port, args.api_port)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker that executes Dagster steps (STOREMON_EXECUTOR=celery runs)."""
    try:
        import dagster_celery  # noqa: F401 - the worker's task is dagster-celery's
    except ImportError:
        return _fail("storemon worker needs the celery extra: pip install 'storemon[celery]'")
    from storemon_assets.worker import CELERY_QUEUE, make_worker_app

    argv = ["worker", "-Q", CELERY_QUEUE, "--prefetch-multiplier=1", "--loglevel", args.loglevel]
    argv += ["--concurrency", str(args.concurrency)] + (["-n", args.name] if args.name else [])
    make_worker_app(args.visibility_timeout).worker_main(argv)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="storemon", description="Store uptime/downtime during business hours.")
    sub = parser.add_subparsers(dest="command", required=True)

    report = sub.add_parser(
        "report",
        help="write the report CSV: from the configured database, or from three CSV files (and a fourth of special hours) without Dagster",
        description="Without --status/--hours/--timezones the report comes from the configured database "
        "(STOREMON_DATABASE_URL); with all three (and --special, optionally), from those files loaded into a "
        "fresh embedded database.",
    )
    report.add_argument("--status", help="status polls CSV (store_id,status,timestamp_utc)")
    report.add_argument("--hours", help="business hours CSV (store_id,dayOfWeek|day,start_time_local,end_time_local)")
    report.add_argument("--timezones", help="timezones CSV (store_id,timezone_str)")
    report.add_argument(
        "--special",
        help="optional special hours CSV (store_id,date_local,start_time_local,end_time_local): holidays, "
        "closures, short days",
    )
    report.add_argument(
        "--as-of",
        default=None,
        help="report time T (ISO-8601, UTC unless an offset is given, or 'now'); default: the latest poll",
    )
    report.add_argument("--out", required=True, help="where to write the report CSV")
    report.add_argument("--quiet", action="store_true", help="no progress on stderr")
    report.set_defaults(func=cmd_report)

    ingest = sub.add_parser(
        "ingest",
        help="load CSV files of any of the four kinds (recognised by header) into the configured database",
    )
    ingest.add_argument("files", nargs="+", metavar="FILE")
    ingest.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ingest.set_defaults(func=cmd_ingest)

    incidents = sub.add_parser(
        "incidents",
        help="write the incidents of the report as of T from the configured database (docs/monitor.md)",
        description="One row per incident: a store's down business time in the week before T, "
        "store_id,started_utc,ended_utc,downtime_minutes,open.",
    )
    incidents.add_argument("--as-of", default=None, help="T (ISO-8601 or 'now'); default: the latest poll")
    incidents.add_argument("--out", required=True, help="where to write the incidents CSV")
    incidents.set_defaults(func=cmd_incidents)

    alerts = sub.add_parser(
        "alerts",
        help="send the alerts due as of T once (STOREMON_ALERT_URLS); exit 1 if a delivery failed",
        description="The same evaluation as the Dagster alerts sensor: down, recovered and not-reporting "
        "notifications, each at most once (the ledger in the database); failed ones are retried next time.",
    )
    alerts.add_argument(
        "--as-of", default=None, help="T (ISO-8601 or 'now'); default: STOREMON_AS_OF, else the latest poll"
    )
    alerts.set_defaults(func=cmd_alerts)

    generate = sub.add_parser("generate", help="write a realistic synthetic data set")
    generate.add_argument(
        "--stores", type=int, default=None, help="number of stores (with --hours: a random sample of its stores)"
    )
    generate.add_argument("--days", type=int, default=8, help="days of polls ending at --end")
    generate.add_argument(
        "--end",
        default=None,
        help="instant of the last poll (ISO-8601, UTC unless an offset is given); "
        "or 'now'; default 2023-01-25T18:13:22.479220Z, the end of the real 2023 sample",
    )
    generate.add_argument("--out", required=True, help="output folder")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--hours", default=None, help="a real business-hours CSV whose stores to use")
    generate.add_argument("--timezones", default=None, help="a real timezones CSV whose stores to use")
    generate.set_defaults(func=cmd_generate)

    sample = sub.add_parser("sample", help="copy the bundled sample data into the landing folder")
    sample.add_argument("--to", default=None, help="target folder (default: STOREMON_DATA_DIR)")
    sample.set_defaults(func=cmd_sample)
    daily = sub.add_parser(
        "daily",
        help="write daily uptime per store and local date (business, uptime, downtime minutes) as CSV",
        description="Daily values of the configured database's stores for the dates whose day meets "
        "[T - N days, T): stored values where they hold for T, the rest computed (docs/history.md).",
    )
    daily.add_argument("--out", required=True, help="where to write the CSV")
    daily.add_argument("--days", type=int, default=90, help="dates of the last N days before T (default 90)")
    daily.add_argument("--as-of", default=None, help="T (ISO-8601, or 'now'); default: the latest poll")
    daily.add_argument("--quiet", action="store_true", help="no progress on stderr")
    daily.set_defaults(func=cmd_daily)

    sla = sub.add_parser("sla", help="write each store's business, uptime and downtime hours of a local month")
    sla.add_argument("--month", required=True, help="YYYY-MM: each store's local calendar month")
    sla.add_argument("--out", required=True, help="where to write the CSV")
    sla.add_argument("--as-of", default=None, help="T (ISO-8601, or 'now'); default: the latest poll")
    sla.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sla.set_defaults(func=cmd_sla)

    db = sub.add_parser("db", help="the configured database (STOREMON_DATABASE_URL)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="upgrade its schema to the current version, keeping every row")
    upgrade.set_defaults(func=cmd_db_upgrade)
    db_prune = db_sub.add_parser(
        "prune",
        help="delete polls older than STOREMON_RETENTION_DAYS (daily values stored first; answers unchanged) "
        "and run reports older than STOREMON_REPORT_KEEP_DAYS",
    )
    db_prune.add_argument(
        "--retention-days", type=int, default=None, help="instead of STOREMON_RETENTION_DAYS (at least 8)"
    )
    db_prune.add_argument("--quiet", action="store_true", help="no progress on stderr")
    db_prune.set_defaults(func=cmd_db_prune)
    token = sub.add_parser("token", help="API tokens: who may read, trigger or administer (docs/access.md)")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True, help="unique name (runs it triggers are tagged with it)")
    create.add_argument("--scope", required=True, choices=["read", "trigger", "admin"])
    create.add_argument("--stores", default=None, help="ID,ID,...: the only stores it sees (default: every store)")
    create.set_defaults(func=cmd_token_create)
    token_sub.add_parser("list", help="list tokens (never the tokens themselves)").set_defaults(func=cmd_token_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_token_revoke)
    api = sub.add_parser("api", help="serve the HTTP API (/trigger_report, /get_report) beside Dagster")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(func=cmd_api)

    dev = sub.add_parser("dev", help="serve the Dagster UI (dagster dev) and the HTTP API; one Ctrl-C stops both")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000, help="Dagster webserver port")
    dev.add_argument("--api-port", type=int, default=8000, help="HTTP API port")
    dev.set_defaults(func=cmd_dev)

    worker = sub.add_parser(
        "worker", help="run a Celery worker for Dagster steps (STOREMON_EXECUTOR=celery, STOREMON_CELERY_BROKER)"
    )
    worker.add_argument("--concurrency", type=int, default=1, help="steps run at once (default 1: one per worker)")
    worker.add_argument("--name", default=None, help="Celery node name, e.g. shard-worker-1@%%h")
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument(
        "--visibility-timeout",
        type=int,
        default=3600,
        help="seconds after which a step whose worker vanished is given to another worker; "
        "must exceed the longest step (default 3600)",
    )
    worker.set_defaults(func=cmd_worker)
    return parser


def _exit_on_sigterm(signum, _frame) -> None:
    """SIGTERM ends the command as Ctrl-C does, through its clean-up (temporary files), not at once."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run one command: of `argv`, or (None) of this process's own command line, which ends when
    the command returns."""
    if argv is None:  # this process's own command (a caller in Python keeps its environment)
        settings.limit_blas_threads()
    args = build_parser().parse_args(argv)
    if args.command in ("report", "ingest", "generate"):  # the commands that write files; dev/api stop their own way
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if getattr(args, "stores", None) is None and args.command == "generate" and not (args.hours or args.timezones):
        args.stores = 100
    code = args.func(args)
    if argv is None:
        # The process exits next. Exempting every object from the garbage collector spares the
        # interpreter's exit collecting the modules' objects and freeing them one by one (the
        # system takes the memory back at once), a visible share of a short command
        # (docs/history.md).
        gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())

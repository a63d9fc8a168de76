"""The four raw feeds, loaded from the landing folder into the database."""

import dagster as dg
from pydantic import Field

from storemon_assets import settings
from storemon_assets.core.feeds import HOURS, POLLS, SPECIAL, TIMEZONES
from storemon_assets.core.ingest_batches import retry_delay_seconds
from storemon_assets.core.summaries import markdown_list
from storemon_assets.core.tables import BUSINESS_HOURS, SPECIAL_HOURS, STORE_STATUS_POLLS, STORE_TIMEZONES
from storemon_assets.db.queries import feed_versions, table_counts
from storemon_assets.defs.resources import LandingFolder, StoremonDatabase
from storemon_assets.defs.ui_metadata import check_result, table_metadata, ui_metadata
from storemon_assets.service import (
    FileIngested,
    ingest_file,
    loaded_of_kind,
    lost_weekdays_finding,
    lost_weekdays_listing,
    run_feed_figures,
)

LANDING_FOLDER = dg.AssetKey("landing_folder")
LOADED_FILE = "loaded_file"  # metadata of the observation logged for each file a run loaded
MAX_STEP_RETRIES = 4  # retries of a transient database error: five attempts over ~7.5 min at 30 s
RAW_STORE_STATUS = dg.AssetKey("raw_store_status")
RAW_BUSINESS_HOURS = dg.AssetKey("raw_business_hours")
RAW_STORE_TIMEZONES = dg.AssetKey("raw_store_timezones")
RAW_SPECIAL_HOURS = dg.AssetKey("raw_special_hours")

RAW_ASSETS = {
    POLLS: (RAW_STORE_STATUS, STORE_STATUS_POLLS, "Status polls (UTC): is the store online? About hourly per store."),
    HOURS: (RAW_BUSINESS_HOURS, BUSINESS_HOURS, "Business hours per weekday, in each store's local time."),
    TIMEZONES: (RAW_STORE_TIMEZONES, STORE_TIMEZONES, "Each store's IANA timezone."),
    SPECIAL: (
        RAW_SPECIAL_HOURS,
        SPECIAL_HOURS,
        "Special hours: dates whose hours differ from the store's week (holidays, closures, short days), "
        "in local time; they replace the weekly hours of those dates.",
    ),
}


landing_folder = dg.AssetSpec(
    LANDING_FOLDER,
    description="The folder (STOREMON_DATA_DIR) where CSV files of any of the four feeds arrive, "
    "recognised by their header. Watched by the landing_files_sensor; files that cannot be read "
    "are moved to its failed/ subfolder with the error beside them.",
    group_name="raw",
    kinds={"csv"},
)


class IngestConfig(dg.Config):
    files: list[str] = Field(
        default_factory=list,
        description="CSV files directly inside the landing folder (a name alone means one there); any other path "
        "fails the run unread. Empty: every CSV in the landing folder (files already loaded are skipped).",
    )


NO_STORE_LOST_WEEKDAYS = "no_store_lost_weekdays"


@dg.multi_asset(
    name="ingest_landing_files",
    specs=[
        dg.AssetSpec(
            key,
            description=f"{description} Table `{spec.name}`. Loaded from CSV files recognised by their header.",
            group_name="raw",
            kinds={"csv", "sql"},
            deps=[LANDING_FOLDER],
            metadata=table_metadata(spec),
        )
        for key, spec, description in RAW_ASSETS.values()
    ],
    check_specs=[
        dg.AssetCheckSpec(
            NO_STORE_LOST_WEEKDAYS,
            asset=RAW_BUSINESS_HOURS,
            description="No hours file loaded took from a store a weekday it had (SPEC 1: a store's rows must not "
            "be split across files; an accidental split looks like this). Evaluated by each run that loads hours.",
        )
    ],
    # Only so that a run loading no hours file may leave the check's last result standing (a
    # warning stays visible until hours arrive again): the function loads every file whatever
    # is selected, and records each selected raw table.
    can_subset=True,
)
def ingest_landing_files(
    context: dg.AssetExecutionContext, config: IngestConfig, database: StoremonDatabase, landing: LandingFolder
):
    """Load new CSV files, each in one transaction (docs/operations.md, "The landing folder"). An
    unreadable file goes to `failed/` and fails the run once the others are loaded; a database
    error is retried with backoff. Each file loaded is logged as an observation of
    `landing_folder`, which tells the sensor what a failed run had done."""
    engine = database.engine()
    paths = [landing.folder / p for p in config.files] or landing.csv_files()
    done: list[FileIngested] = []
    failures: list[str] = []
    for path in paths:
        file = ingest_file(engine, path, read=landing.open_complete)
        if file.database_error is not None:
            if not file.transient:
                raise file.database_error
            delay = retry_delay_seconds(context.retry_number + 1, settings.ingest_retry_seconds())
            context.log.warning(f"{file.describe()}; retrying in {delay:g} s")
            raise dg.RetryRequested(max_retries=MAX_STEP_RETRIES, seconds_to_wait=delay) from file.database_error
        if file.unreadable is not None:
            failures.append(file.unreadable)
            if landing.holds(path):
                landing.move_aside(path, file.unreadable)
            context.log.error(file.unreadable)
        elif file.outcome is None:
            context.log.warning(f"{file.describe()}; the sensor will look again")
        else:
            done.append(file)
            context.log.info(file.describe())
            context.log_event(dg.AssetObservation(asset_key=LANDING_FOLDER, metadata={LOADED_FILE: path.name}))

    counts = table_counts(engine, [spec for _, spec, _ in RAW_ASSETS.values()])
    versions = feed_versions(engine)
    # Each raw asset is its table: every run records all four as they now are. The data
    # version only changes when files of that feed were loaded, so an unchanged feed does not
    # make its downstream assets look stale (and the report step is never skipped).
    for kind, (key, spec, _) in RAW_ASSETS.items():
        if key in context.selected_asset_keys:
            table = {"dagster/row_count": counts[spec.name], "database": database.display_url}
            metadata = ui_metadata(run_feed_figures(done, kind)) | table
            yield dg.MaterializeResult(
                asset_key=key, data_version=dg.DataVersion(versions.get(kind, "empty")), metadata=metadata
            )
    hours = loaded_of_kind(done, HOURS)
    if hours:  # a warning naming the stores the run's hours files took weekdays from, per file
        lost = lost_weekdays_finding(hours)
        stores, files = len(lost.details["stores"]), lost_weekdays_listing(lost.details["files"])
        yield check_result(lost, check_name=NO_STORE_LOST_WEEKDAYS, stores=stores, files=files)
    if failures:
        raise dg.Failure(
            allow_retries=False,
            description=f"{len(failures)} file(s) could not be ingested and were moved aside: " + "; ".join(failures),
            metadata=ui_metadata({"errors": markdown_list(failures)}),
        )

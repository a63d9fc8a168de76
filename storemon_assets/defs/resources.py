"""Dagster resources: the database, the landing folder and the reports folder.

Each one is configuration plus a few methods; swapping SQLite for PostgreSQL is a different
`url`. Defaults come from the STOREMON_* environment variables (see settings.py).
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from storemon_assets import settings
from storemon_assets.db.engine import create_db_engine, create_tables


@lru_cache(maxsize=8)
def _engine_for(url: str) -> sa.Engine:
    engine = create_db_engine(url)
    create_tables(engine)
    return engine


class StoremonDatabase(dg.ConfigurableResource):
    """The storemon database (SQLAlchemy URL: SQLite by default, PostgreSQL supported)."""

    url: str

    def engine(self) -> sa.Engine:
        return _engine_for(self.url)

    @property
    def display_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)


class LandingFolder(dg.ConfigurableResource):
    """Where new CSV files of any of the three kinds arrive; unreadable ones are moved aside.

    Files are taken once they have not changed for `settle_seconds`, so a file still being
    written is not read half-way (writers may also write `name.csv.part` and rename it).
    """

    path: str
    settle_seconds: float = 2.0

    @property
    def folder(self) -> Path:
        return Path(self.path)

    @property
    def failed_folder(self) -> Path:
        return self.folder / "failed"

    def csv_files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")

    def settled_csv_files(self, now: float | None = None) -> list[Path]:
        """CSV files not modified within the last `settle_seconds`."""
        now = time.time() if now is None else now
        return [p for p in self.csv_files() if now - p.stat().st_mtime >= self.settle_seconds]

    def move_aside(self, path: Path, error: str) -> Path:
        """Move a file that failed ingestion to failed/, with its error in `<name>.error.txt`."""
        self.failed_folder.mkdir(parents=True, exist_ok=True)
        target = self.failed_folder / path.name
        if path.exists():
            path.replace(target)
        target.with_name(target.name + ".error.txt").write_text(error + "\n")
        return target


class ReportsFolder(dg.ConfigurableResource):
    """Where `combined_report.csv` and each run's `<run id>.csv` are written."""

    path: str

    @property
    def folder(self) -> Path:
        return Path(self.path)

    def report_path(self, report_id: str) -> Path:
        return self.folder / f"{report_id}.csv"


def default_resources() -> dict[str, dg.ConfigurableResource]:
    # A URL set in the environment reaches Dagster as an EnvVar, read when a run starts, so a
    # password in it is never stored in run config or shown in the UI.
    database_url = (
        dg.EnvVar(settings.DATABASE_URL.name) if settings.is_set(settings.DATABASE_URL) else settings.database_url()
    )
    return {
        "database": StoremonDatabase(url=database_url),
        "landing": LandingFolder(path=str(settings.landing_dir())),
        "reports": ReportsFolder(path=str(settings.reports_dir())),
    }

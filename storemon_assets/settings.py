"""Where storemon keeps things, from environment variables with embedded defaults (SPEC §7).

| variable | default |
| --- | --- |
| STOREMON_HOME | the repository root in a checkout, else the current directory |
| STOREMON_DATABASE_URL | SQLite file `<home>/data/storemon.db` |
| STOREMON_DATA_DIR | `<home>/data/landing` (new CSV files arrive here) |
| STOREMON_REPORTS_DIR | `<home>/data/reports` |
| STOREMON_AS_OF | unset: T is the latest poll; `now`; or a timestamp |
| STOREMON_DAGSTER_URL | `http://127.0.0.1:3000` |
"""

from __future__ import annotations

import os
from pathlib import Path

from storemon_assets.database import sqlite_url

_PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DATA_DIR = _PACKAGE_DIR / "sample_data"


def storemon_home() -> Path:
    if os.environ.get("STOREMON_HOME"):
        return Path(os.environ["STOREMON_HOME"]).resolve()
    checkout = _PACKAGE_DIR.parent
    if (checkout / "workspace.yaml").exists():
        return checkout
    return Path.cwd()


def data_home() -> Path:
    return storemon_home() / "data"


def database_url() -> str:
    return os.environ.get("STOREMON_DATABASE_URL") or sqlite_url(data_home() / "storemon.db")


def landing_dir() -> Path:
    return Path(os.environ.get("STOREMON_DATA_DIR") or data_home() / "landing").resolve()


def reports_dir() -> Path:
    return Path(os.environ.get("STOREMON_REPORTS_DIR") or data_home() / "reports").resolve()


def as_of_setting() -> str:
    return os.environ.get("STOREMON_AS_OF", "")


def dagster_url() -> str:
    return os.environ.get("STOREMON_DAGSTER_URL", "http://127.0.0.1:3000").rstrip("/")
